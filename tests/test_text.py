"""Rich text to whole plain text: paragraphs, breaks, entities, hidden parts, bounds."""

from __future__ import annotations

from crm_upsell_connector.text import html_to_text
from crm_upsell_connector.values import first_line


def test_every_paragraph_and_break_is_kept() -> None:
    html = "<p>Thanks for the call.</p><p>We are <b>unhappy</b> with support</p>line one<br>not happy<br/>end"
    assert html_to_text(html) == "Thanks for the call.\n\nWe are unhappy with support\nline one\nnot happy\nend"


def test_inline_markup_does_not_split_words_and_entities_decode() -> None:
    assert html_to_text("<span>Ac</span><i>me</i> &amp; Co&nbsp;Ltd") == "Acme & Co Ltd"


def test_scripts_styles_and_comments_are_dropped() -> None:
    assert html_to_text("<style>p{}</style><script>x()</script><!-- hidden -->seen") == "seen"


def test_plain_text_keeps_its_lines_and_is_bounded() -> None:
    assert html_to_text("first\nsecond") == "first\nsecond"
    assert len(html_to_text("x" * 50_000)) == 20_000
    assert html_to_text(None) == ""
    assert html_to_text("日本語の<br>メモ") == "日本語の\nメモ"


def test_first_line_reads_through_markup() -> None:
    assert first_line("<div>\n\n &amp; hello<br>world</div>") == "& hello"
