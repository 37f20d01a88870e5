"""Records, tables indexed by (SystemModstamp, Id), and the state of open query cursors."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ---- store --------------------------------------------------------------------------------------------


class Rec:
    """One record: its scenario source (None if created through the API) and written values."""

    __slots__ = ("created_ms", "deleted_ms", "id", "modified_ms", "over", "src")

    def __init__(self, id_: str, src: object | None, created_ms: int, modified_ms: int) -> None:
        self.id = id_
        self.src = src
        self.over: dict[str, Any] | None = None
        self.created_ms = created_ms
        self.modified_ms = modified_ms
        self.deleted_ms: int | None = None


@dataclass
class Table:
    """The records of one object: sorted ids and a sorted (SystemModstamp, Id) index, deleted ones too."""

    name: str
    recs: dict[str, Rec] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    modified: list[tuple[int, str]] = field(default_factory=list)
    deleted: list[tuple[int, str]] = field(default_factory=list)
    counter: int = 0
    archived: set[str] = field(default_factory=set)  # Task/Event ids only queryAll returns

    def add(self, rec: Rec) -> None:
        self.recs[rec.id] = rec
        bisect.insort(self.ids, rec.id)
        bisect.insort(self.modified, (rec.modified_ms, rec.id))

    def live(self, id_: str) -> Rec | None:
        rec = self.recs.get(id_)
        return rec if rec is not None and rec.deleted_ms is None else None

    def _unindex(self, rec: Rec) -> None:
        key = (rec.modified_ms, rec.id)
        i = bisect.bisect_left(self.modified, key)
        if i < len(self.modified) and self.modified[i] == key:
            del self.modified[i]

    def touch(self, rec: Rec, ms: int) -> None:
        if rec.deleted_ms is not None:
            return
        self._unindex(rec)
        rec.modified_ms = ms
        bisect.insort(self.modified, (ms, rec.id))

    def delete(self, rec: Rec, ms: int) -> None:
        if rec.deleted_ms is not None:
            return
        self._unindex(rec)
        rec.modified_ms = ms
        rec.deleted_ms = ms
        bisect.insort(self.modified, (ms, rec.id))
        bisect.insort(self.deleted, (ms, rec.id))

    def purge(self, rec: Rec) -> None:
        """Remove a deleted record physically (emptied from the Recycle Bin): no API sees it again."""
        self._unindex(rec)
        for index, key in ((self.deleted, (rec.modified_ms, rec.id)),):
            i = bisect.bisect_left(index, key)
            if i < len(index) and index[i] == key:
                del index[i]
        i = bisect.bisect_left(self.ids, rec.id)
        if i < len(self.ids) and self.ids[i] == rec.id:
            del self.ids[i]
        self.recs.pop(rec.id, None)
        self.archived.discard(rec.id)


Getter = Callable[[Any], Any]
Computed = Callable[[Rec], Any]
Row = Callable[[str], Any]


@dataclass
class Column:
    """A selected field: a plain field, or one field of a parent reached through a relationship."""

    name: str
    ftype: str
    relationship: str | None = None
    fk: str | None = None
    target: str | None = None


@dataclass
class Cursor:
    """An open query: what it asks and where each returned batch ended (so a retried page is identical)."""

    locator: str
    sobject: str
    tooling: bool
    all_rows: bool
    kind: str  # "modstamp" | "id" | "list"
    predicate: Callable[[Row], bool]
    columns: list[Column]
    low: Any
    high: Any
    limit: int | None
    batch: int
    total: int
    positions: dict[int, tuple[str, Any]]
    snapshot: list[str] | None = None
    served: int = 0  # batches answered through this locator
