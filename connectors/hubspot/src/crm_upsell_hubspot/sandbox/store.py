"""The in-memory record store: records, tables with sorted indexes, parsed search terms."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class Rec:
    """One CRM record: its scenario source (or None when created through the API) plus overrides."""

    __slots__ = ("archived_ms", "created_ms", "id", "merged_into", "props", "src", "updated_ms")

    def __init__(self, id_: int, src: object | None, created_ms: int, updated_ms: int) -> None:
        self.id = id_
        self.src = src
        self.props: dict[str, str | None] | None = None
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived_ms: int | None = None
        #: the record this one was merged into: it left the lists, its id now leads there
        self.merged_into: int | None = None


@dataclass
class Table:
    """Records of one object type with a sorted id list and a sorted (modified, id) index."""

    name: str
    recs: dict[int, Rec] = field(default_factory=dict)
    active: list[int] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)
    modified: list[tuple[int, int]] = field(default_factory=list)

    def add(self, rec: Rec) -> None:
        self.recs[rec.id] = rec
        if self.active and rec.id < self.active[-1]:
            bisect.insort(self.active, rec.id)
        else:
            self.active.append(rec.id)
        bisect.insort(self.modified, (rec.updated_ms, rec.id))

    def get(self, id_: int) -> Rec | None:
        """The live record with this id; a merged-away id leads to the record it was merged into
        ("fetching any records using the original IDs will return the new merged record",
        https://developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-and-companies)."""
        rec = self.recs.get(id_)
        for _ in range(len(self.recs)):
            if rec is None or rec.merged_into is None:
                break
            rec = self.recs.get(rec.merged_into)
        return rec if rec is not None and rec.archived_ms is None else None

    def retire(self, rec: Rec, into: int) -> None:
        """A merged-away record: it leaves the list and search indexes without being archived."""
        i = bisect.bisect_left(self.modified, (rec.updated_ms, rec.id))
        if i < len(self.modified) and self.modified[i] == (rec.updated_ms, rec.id):
            del self.modified[i]
        j = bisect.bisect_left(self.active, rec.id)
        if j < len(self.active) and self.active[j] == rec.id:
            del self.active[j]
        rec.merged_into = into

    def touch(self, rec: Rec, ms: int) -> None:
        if rec.archived_ms is None:
            i = bisect.bisect_left(self.modified, (rec.updated_ms, rec.id))
            if i < len(self.modified) and self.modified[i] == (rec.updated_ms, rec.id):
                del self.modified[i]
            bisect.insort(self.modified, (ms, rec.id))
        rec.updated_ms = ms

    def archive(self, rec: Rec, ms: int) -> None:
        if rec.archived_ms is not None:
            return
        i = bisect.bisect_left(self.modified, (rec.updated_ms, rec.id))
        if i < len(self.modified) and self.modified[i] == (rec.updated_ms, rec.id):
            del self.modified[i]
        j = bisect.bisect_left(self.active, rec.id)
        if j < len(self.active) and self.active[j] == rec.id:
            del self.active[j]
        bisect.insort(self.archived, rec.id)
        rec.archived_ms = ms
        rec.updated_ms = ms


@dataclass(frozen=True, slots=True)
class _Filter:
    prop: str
    op: str
    value: str | None
    values: tuple[str, ...]
    high: str | None


@dataclass(frozen=True, slots=True)
class _Sort:
    prop: str
    desc: bool


Getter = Callable[[Any], str | None]
Handler = Callable[[Request, Any], Response]
