"""Plain text as HTML for CRM fields that display rich text (HubSpot's task body).

Every character of the text is escaped, so a value from the CRM or the config (a company named
``<b>Acme</b>``) shows as that text and never as markup. Blank lines separate paragraphs, lines
starting with ``- `` become a bulleted list, other line breaks stay line breaks.
"""

from __future__ import annotations

from html import escape

_BULLET = "- "


def plain_to_html(text: str) -> str:
    """``"Why now: ...\\n\\nWhat we know:\\n- a\\n- b"`` -> ``<p>Why now: ...</p><p>What we know:</p><ul>...``."""
    blocks: list[str] = []
    for paragraph in _paragraphs(text):
        lines: list[str] = []
        items: list[str] = []
        for line in paragraph:
            if line.startswith(_BULLET):
                if lines:
                    blocks.append("<p>" + "<br>".join(lines) + "</p>")
                    lines = []
                items.append("<li>" + escape(line[len(_BULLET) :].strip()) + "</li>")
            else:
                if items:
                    blocks.append("<ul>" + "".join(items) + "</ul>")
                    items = []
                lines.append(escape(line.strip()))
        if lines:
            blocks.append("<p>" + "<br>".join(lines) + "</p>")
        if items:
            blocks.append("<ul>" + "".join(items) + "</ul>")
    return "".join(blocks)


def _paragraphs(text: str) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out
