"""Plain text as escaped HTML for rich-text CRM fields."""

from __future__ import annotations

from crm_upsell_connector.richtext import plain_to_html


def test_paragraphs_line_breaks_and_lists() -> None:
    text = "Line one\nline two\n\nFacts:\n- a\n- b\nafter\n\n\nEnd"
    assert plain_to_html(text) == (
        "<p>Line one<br>line two</p><p>Facts:</p><ul><li>a</li><li>b</li></ul><p>after</p><p>End</p>"
    )


def test_every_value_is_escaped() -> None:
    html = plain_to_html("<b>Acme</b> & \"Sons\" 'Ltd'\n- <i>x</i>")
    assert html == (
        "<p>&lt;b&gt;Acme&lt;/b&gt; &amp; &quot;Sons&quot; &#x27;Ltd&#x27;</p><ul><li>&lt;i&gt;x&lt;/i&gt;</li></ul>"
    )


def test_empty_text() -> None:
    assert plain_to_html("") == ""
    assert plain_to_html("\n \n") == ""
