"""Lenient parsing of the raw values CRMs hand back (numbers and booleans as text, blanks, junk, HTML)."""

from __future__ import annotations

import math
from typing import Any

from crm_upsell_connector.text import first_line_of, html_to_text

TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "f", "0", "no", "n", "off"})


def parse_number(value: Any) -> float | None:
    """A float from ``1234.5``, ``"1,234.50"``, ``" 12 "``; None for blanks, nonsense, NaN and infinity."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def parse_bool(value: Any) -> bool | None:
    """True/False from booleans and the usual words; None for missing values and anything else."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


def first_line(body: Any) -> str:
    """The first non-empty line of a (possibly HTML) body, at most 255 characters."""
    return first_line_of(html_to_text(None if body is None else str(body)))
