"""Rich text (HTML bodies of notes, e-mails, calls and meetings) turned into whole plain text.

CRMs keep note and e-mail bodies as HTML fragments (HubSpot ``hs_note_body``, Zoho
``Note_Content``, Salesforce ``EmailMessage.HtmlBody``). The rules read the whole text, so a
complaint in a second paragraph or after a ``<br>`` counts; a real HTML parser (BeautifulSoup on
the standard library's parser) does the reading, never a regular expression.
"""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString, Tag

#: elements that start a new line of text where they open and close
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "div",
        "dl",
        "dt",
        "dd",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
#: elements whose content is never text a reader sees
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")

#: the default bound on a body kept for the rules, in characters
BODY_LIMIT = 20_000


def html_to_text(html: str | None, limit: int = BODY_LIMIT) -> str:
    """The whole visible text of an HTML fragment (or plain text), at most ``limit`` characters.

    Paragraphs, list items, table rows and ``<br>`` become line breaks; runs of spaces fold into
    one; entities are decoded; scripts, styles and comments are dropped. Plain text without markup
    comes back with its lines kept. ``None`` gives ``""``.
    """
    if not html:
        return ""
    soup = BeautifulSoup(html, "html.parser")
    parts: list[str] = []
    _walk(soup, parts)
    text = "".join(parts)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    folded = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return folded[:limit]


def _walk(node: Any, parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            parts.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in _HIDDEN:
            continue
        if child.name == "br":
            parts.append("\n")
            continue
        block = child.name in _BLOCKS
        if block:
            parts.append("\n")
        _walk(child, parts)
        if block:
            parts.append("\n")


def first_line_of(text: str, limit: int = 255) -> str:
    """The first non-empty line of plain text, at most ``limit`` characters (a subject line)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""
