"""Merging records as a user does in the UI (or through the SOAP API's ``merge()`` call).

SOAP API Developer Guide, "merge()": up to three records of one object become one; the master keeps
its values, the related records of the others (contacts, opportunities, activities...) are moved to
the master, and the others are deleted, into the Recycle Bin, with ``MasterRecordId`` set to the
master's id, so that ``queryAll`` and getDeleted report them.
"""

from __future__ import annotations

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.soql_parse import id15_to_18

__all__ = ["MergeApi"]

#: Where each object's children point at it: (child object, reference field).
_CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (
        ("Contact", "AccountId"),
        ("Opportunity", "AccountId"),
        ("Asset", "AccountId"),
        ("Task", "WhatId"),
        ("Event", "WhatId"),
    ),
    "Contact": (("Task", "WhoId"), ("Event", "WhoId")),
}


class MergeApi(OrgBase):
    """``merge``: the master absorbs the others."""

    def merge(self, otype: str, master_id: str, merged: list[str]) -> list[str]:
        """Merge ``merged`` into ``master_id``; returns the ids deleted. Raises KeyError/ValueError."""
        with self.lock:
            table = self._table(otype)
            if table.name not in _CHILDREN:
                raise ValueError(f"{table.name} records cannot be merged")
            master = table.live(id15_to_18(master_id))
            found = [table.live(id15_to_18(i)) for i in merged]
            losers = [r for r in found if r is not None]
            if master is None or len(losers) != len(found) or not 1 <= len(losers) <= 2:
                raise KeyError("merge needs a live master and one or two other live records")
            now = self.now_ms()
            gone = {r.id for r in losers}
            for child_type, field in _CHILDREN[table.name]:
                children = self.tables[child_type]
                for rec in list(children.recs.values()):
                    if rec.deleted_ms is None and self.value(child_type, rec, field) in gone:
                        rec.over = {**(rec.over or {}), field: master.id}
                        children.touch(rec, now)
            for rec in losers:
                rec.over = {**(rec.over or {}), "MasterRecordId": master.id}
                table.delete(rec, now)
            table.touch(master, now)
            return sorted(gone)
