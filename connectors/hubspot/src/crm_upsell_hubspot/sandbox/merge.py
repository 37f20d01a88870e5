"""Merging two companies or two contacts: ``POST /crm/v3/objects/{objectType}/merge``.

As HubSpot documents it (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/companies/merge-companies
and https://developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-and-companies):
a new record with a new id results; it takes the primary record's property values (the other
record's fill what the primary lacks) and both records' associations; ``hs_merged_object_ids``
lists the ids merged into it. The two old records leave the list and search endpoints without
being archived, and fetching (or writing) by an old id leads to the merged record.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from crm_upsell_hubspot.sandbox.catalog import ASSOCIATION_TYPES
from crm_upsell_hubspot.sandbox.common import _bad, _error
from crm_upsell_hubspot.sandbox.records import RecordsMixin
from crm_upsell_hubspot.sandbox.store import Rec

#: object types this sandbox merges (HubSpot merges more; the connector reads these two)
MERGEABLE = frozenset({"companies", "contacts"})
MERGED_IDS = "hs_merged_object_ids"
_SYSTEM = frozenset({"hs_object_id", "hs_lastmodifieddate", "lastmodifieddate", "createdate"})


class MergeMixin(RecordsMixin):
    """The merge route, and :meth:`merge` for tests."""

    def merge_objects(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        if otype not in MERGEABLE:
            raise _bad(f"Merging {otype} is not supported by this sandbox.")
        if not isinstance(body, dict):
            raise _bad("Invalid input JSON: a merge request must be an object.")
        raw_primary, raw_other = body.get("primaryObjectId"), body.get("objectIdToMerge")
        if not isinstance(raw_primary, str | int) or not isinstance(raw_other, str | int):
            raise _bad("Invalid input JSON: 'primaryObjectId' and 'objectIdToMerge' are required.")
        ids = [str(raw_primary).strip(), str(raw_other).strip()]
        found = [table.get(int(i)) if i.isdigit() else None for i in ids]
        missing = [i for i, rec in zip(ids, found, strict=True) if rec is None]
        if missing:
            return _error(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": missing},
            )
        primary, other = found
        assert primary is not None and other is not None
        if primary.id == other.id:
            raise _bad("Cannot merge an object with itself.", subCategory="MergeError.SAME_OBJECT")
        return JSONResponse(self.public(otype, self.merge(otype, primary, other), None))

    def merge(self, otype: str, primary: Rec, other: Rec) -> Rec:
        """Merge ``other`` into ``primary`` as a new record; returns it."""
        table = self.tables[otype]
        now = self.now_ms()
        merged = Rec(self._new_id(otype), primary.src, min(primary.created_ms, other.created_ms), now)
        values: dict[str, str | None] = {}
        for name in self.properties[otype]:
            if name in _SYSTEM:
                continue
            mine = self.value(otype, primary, name)
            values[name] = mine if mine not in (None, "") else self.value(otype, other, name)
        before = [
            i.strip()
            for rec in (primary, other)
            for i in (self.value(otype, rec, MERGED_IDS) or "").split(";")
            if i.strip()
        ]
        values[MERGED_IDS] = ";".join(dict.fromkeys([*before, str(primary.id), str(other.id)]))
        merged.props = values
        for old in (primary, other):
            table.retire(old, merged.id)
            self._move_links(otype, old.id, merged.id)
        table.add(merged)
        return merged

    def _move_links(self, otype: str, old: int, new: int) -> None:
        for (from_type, to_type), links in self.assoc.items():
            if from_type == otype and old in links:
                moved = links.pop(old)
                target = links.setdefault(new, [])
                target.extend(t for t in moved if t not in target)
            elif to_type == otype and (from_type, to_type) in ASSOCIATION_TYPES:
                for targets in links.values():
                    if old in targets:
                        targets[:] = list(dict.fromkeys(new if t == old else t for t in targets))
