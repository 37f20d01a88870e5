"""Source keys as they are stored and matched: CRM ids and external ids trimmed, domains normalised."""

from __future__ import annotations

import re
from typing import Any

from crm_upsell_connector.usage.config import MatchBy

MAX_KEY = 512
_PLAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def normalise_domain(value: str) -> str | None:
    """``"https://WWW.Acme.com:443/x"``, ``"ops@acme.com"`` and ``"acme.com."`` all become ``"acme.com"``.

    Lower case, no scheme, user, port, path or trailing dot, no leading ``www.``; internationalised
    names in their ASCII (punycode) form, so ``bücher.de`` and ``xn--bcher-kva.de`` match. ``None``
    when nothing like a host name is left.
    """
    text = value.strip().lower()
    if _PLAIN.fullmatch(text) and not text.startswith("www."):
        return text  # most keys: already a bare host name
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1]  # an e-mail address, or user@host
    text = text.split(":", 1)[0].strip().rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    if not text or " " in text or "." not in text:
        return None
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return text


# Salesforce ids: the API returns the 18-character form, the 15-character case-sensitive id plus a
# three-character suffix encoding which of its letters are upper case (five letters per suffix
# character, from this alphabet); reports and exports often hold the 15-character form. See "ID
# Field Type" in https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/field_types.htm
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _case_suffix(id15: str) -> str:
    return "".join(
        _SUFFIX[sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")]
        for start in (0, 5, 10)
    )


def id_aliases(account_id: str) -> tuple[str, ...]:
    """Other spellings of a CRM id a source may hold: a Salesforce 18-character id's 15-character form.

    Only an id whose last three characters are the case suffix of its first fifteen counts, so
    the numeric ids of HubSpot and Zoho never gain an alias.
    """
    plausible = len(account_id) == 18 and account_id.isascii() and account_id.isalnum()
    return (account_id[:15],) if plausible and _case_suffix(account_id[:15]) == account_id[15:] else ()


def source_key(raw: Any, match: MatchBy) -> str | None:
    """A row's key as stored: ``None`` for an empty (or unusable) key."""
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # an id read as a number by a file reader
    text = str(raw).strip()
    if not text or len(text) > MAX_KEY:
        return None
    if match == "domain":
        return normalise_domain(text)
    return text
