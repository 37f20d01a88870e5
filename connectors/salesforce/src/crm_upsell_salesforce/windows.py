"""Query windows for long reads: Id ranges and SystemModstamp ranges that can be halved.

A query over a large object can fail with ``QUERY_TIMEOUT`` ("Your query request was running for too
long"); Salesforce's advice is to make the query more selective (SOQL and SOSL Reference, "Working
with Very Large SOQL Queries"; REST API Developer Guide, "Status Codes and Error Responses"). Reads
therefore retry once and then halve their window, by Id for full reads (ids of one object share a
key prefix and sort by creation, the basis of Bulk API PK chunking) and by SystemModstamp for
incremental reads, until each window answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["KEY_PREFIXES", "IdWindow", "StampWindow", "mid_id"]

#: Key prefixes of the standard objects read (the first three characters of every id; the same in
#: every org: "Standard Field Record ID Prefix Decoder", Salesforce Help).
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Product2": "01t",
    "Asset": "02i",
    "Task": "00T",
    "Event": "00U",
    "User": "005",
    "CampaignMember": "00v",
}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = 12  # characters after the key prefix in a 15-character id


def _value(text: str) -> int:
    n = 0
    for ch in text[:_BODY].ljust(_BODY, "0"):
        n = n * 62 + _BASE62.index(ch) if ch in _BASE62 else n * 62
    return n


def _text(n: int) -> str:
    out = ""
    for _ in range(_BODY):
        n, r = divmod(n, 62)
        out = _BASE62[r] + out
    return out


def mid_id(prefix: str, low: str | None, high: str | None) -> str | None:
    """A 15-character id halfway between ``low`` and ``high`` (ids of one object, ``None`` = open
    end), or None where the range cannot be split any further."""
    a = _value(low[3:15]) if low else 0
    b = _value(high[3:15]) if high else 62**_BODY - 1
    mid = (a + b) // 2
    if mid <= a or mid >= b:
        return None
    return prefix + _text(mid)


@dataclass
class IdWindow:
    """Ids in ``(after, through]`` (None = open), read in Id order; ``after`` moves as pages commit."""

    after: str | None
    through: str | None = None


@dataclass
class StampWindow:
    """SystemModstamp in ``[start, end)`` (end None = open), read in (SystemModstamp, Id) order.

    ``start`` moves to the newest stamp read, and ``seen`` keeps the ids already read at it, so a
    restarted query neither misses nor repeats records.
    """

    start: datetime
    end: datetime | None = None
    seen: set[str] = field(default_factory=set)

    def halves(self, now: datetime) -> tuple[StampWindow, StampWindow] | None:
        end = self.end or now
        span = end - self.start
        if span < timedelta(milliseconds=2):
            return None
        mid = self.start + timedelta(milliseconds=(span // timedelta(milliseconds=1)) // 2)
        return StampWindow(self.start, mid, set(self.seen)), StampWindow(mid, self.end)
