"""CRM v3 search: filter groups, sorts, the query string, paging and the 10,000-result cap."""

from __future__ import annotations

import bisect
import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import JSONResponse, Response

from crm_upsell_hubspot.sandbox.catalog import (
    _ALIASES,
    _MODIFIED_PROPS,
    _OPERATORS,
    _QUERY_PROPS,
    _SEARCH_LIMIT_MAX,
    _TOKEN_SPLIT,
)
from crm_upsell_hubspot.sandbox.common import _bad, _parse_time
from crm_upsell_hubspot.sandbox.records import RecordsMixin
from crm_upsell_hubspot.sandbox.store import Rec, Table, _Filter, _Sort


class SearchMixin(RecordsMixin):
    """The ``/crm/v3/objects/{objectType}/search`` route."""

    def _parse_search(self, otype: str, body: Any) -> tuple[list[list[_Filter]], list[_Sort], int, int]:
        if not isinstance(body, dict):
            raise _bad("Invalid input JSON: a search request must be an object.")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0:
            raise _bad(f"Invalid limit: {limit}")
        if limit > _SEARCH_LIMIT_MAX:
            raise _bad(
                f"Invalid limit: {limit}. The maximum limit for a search request is {_SEARCH_LIMIT_MAX}."
            )
        after_raw = body.get("after")
        after = 0
        if after_raw not in (None, ""):
            if not str(after_raw).isdigit():
                raise _bad(f"Invalid paging cursor: {after_raw}")
            after = int(str(after_raw))
        defs = self.properties[otype]
        groups: list[list[_Filter]] = []
        total_filters = 0
        for group in body.get("filterGroups") or []:
            filters: list[_Filter] = []
            for f in group.get("filters") or []:
                prop = str(f.get("propertyName", ""))
                op = str(f.get("operator", "EQ"))
                if op not in _OPERATORS:
                    raise _bad(f"Unsupported operator: {op}")
                if prop not in defs and not prop.startswith("associations."):
                    raise _bad(
                        f"There was a problem with the request: Property '{prop}' does not exist on {otype}.",
                        subCategory="PROPERTY_DOESNT_EXIST",
                    )
                values = tuple(str(v) for v in f.get("values") or ())
                value = f.get("value")
                high = f.get("highValue")
                filters.append(
                    _Filter(
                        prop,
                        op,
                        None if value is None else str(value),
                        values,
                        None if high is None else str(high),
                    )
                )
            total_filters += len(filters)
            groups.append(filters)
        if len(groups) > 5 or total_filters > 18:
            raise _bad("Too many filters: at most 5 filterGroups with 18 filters in total are allowed.")
        sorts: list[_Sort] = []
        for s in body.get("sorts") or []:
            if isinstance(s, str):
                sorts.append(_Sort(s.lstrip("-"), s.startswith("-")))
            elif isinstance(s, dict):
                sorts.append(
                    _Sort(
                        str(s.get("propertyName", "")),
                        str(s.get("direction", "ASCENDING")).upper() == "DESCENDING",
                    )
                )
        return groups, sorts, limit, after

    def _typed(self, otype: str, prop: str, raw: str | None) -> Any:
        if raw is None or raw == "":
            return None
        if prop.startswith("associations."):
            return raw
        ptype = self.properties[otype].get(prop, {}).get("type", "string")
        if ptype == "number":
            try:
                return float(raw)
            except ValueError:
                return None
        if ptype in ("datetime", "date"):
            return _parse_time(raw)
        return raw.lower()

    def _match(self, otype: str, rec: Rec, f: _Filter) -> bool:
        if f.prop.startswith("associations."):
            to_type = _ALIASES.get(f.prop.split(".", 1)[1])
            linked = {str(i) for i in self.assoc.get((otype, to_type or ""), {}).get(rec.id, [])}
            wanted = {f.value} if f.value is not None else set(f.values)
            hit = bool(linked & wanted)
            return not hit if f.op in ("NEQ", "NOT_IN") else hit
        raw = self.value(otype, rec, f.prop)
        op = f.op
        if op == "HAS_PROPERTY":
            return raw not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return raw in (None, "")
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            needle = (f.value or "").lower()
            text = (raw or "").lower()
            tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
            if "*" in needle:
                hit = fnmatch.fnmatchcase(text, needle) or any(fnmatch.fnmatchcase(t, needle) for t in tokens)
            else:
                hit = needle == text or needle in tokens
            return hit if op == "CONTAINS_TOKEN" else not hit
        actual = self._typed(otype, f.prop, raw)
        if op in ("IN", "NOT_IN"):
            hit = actual is not None and actual in {self._typed(otype, f.prop, v) for v in f.values}
            return hit if op == "IN" else not hit
        expected = self._typed(otype, f.prop, f.value)
        if op == "NEQ":
            return bool(actual != expected)
        if actual is None or expected is None:
            return False
        try:
            if op == "EQ":
                return bool(actual == expected)
            if op == "LT":
                return bool(actual < expected)
            if op == "LTE":
                return bool(actual <= expected)
            if op == "GT":
                return bool(actual > expected)
            if op == "GTE":
                return bool(actual >= expected)
            if op == "BETWEEN":
                high = self._typed(otype, f.prop, f.high)
                return high is not None and bool(expected <= actual <= high)
        except TypeError:
            return False
        return False

    def _query_match(self, otype: str, rec: Rec, query: str) -> bool:
        words = [w for w in query.lower().split() if w]
        text = " ".join((self.value(otype, rec, p) or "") for p in _QUERY_PROPS[otype]).lower()
        tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
        return all(any(t.startswith(w) for t in tokens) or w in text for w in words)

    def search(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        groups, sorts, limit, after = self._parse_search(otype, body)
        cap = self.options.search_cap
        if after + limit > cap:
            raise _bad(
                f"There was a problem with the request. The search endpoints cannot return more than "
                f"{cap} results for a query (after={after}, limit={limit})."
            )
        query = str(body.get("query") or "").strip()
        props = body.get("properties") or []
        mod_props = _MODIFIED_PROPS[otype]
        ids = self._search_ids(otype, table, groups, sorts, query, mod_props)
        total, page_ids = ids(after, limit)
        body_out: dict[str, Any] = {
            "total": total,
            "results": [self._search_public(otype, table.recs[i], props) for i in page_ids],
        }
        if after + limit < total:
            body_out["paging"] = {"next": {"after": str(after + limit)}}
        return JSONResponse(body_out)

    def _search_public(self, otype: str, rec: Rec, props: Sequence[str]) -> dict[str, Any]:
        out = self.public(otype, rec, props)
        out.pop("associations", None)
        return out

    def _search_ids(
        self,
        otype: str,
        table: Table,
        groups: list[list[_Filter]],
        sorts: list[_Sort],
        query: str,
        mod_props: tuple[str, ...],
    ) -> Callable[[int, int], tuple[int, list[int]]]:
        """A function (after, limit) -> (total, page ids) for this query, via an index where possible."""
        sort = sorts[0] if sorts else None
        single = len(groups) <= 1 and len(sorts) <= 1 and not query
        filters = groups[0] if groups else []
        if single:
            on_mod = [f for f in filters if f.prop in mod_props]
            use_mod = bool(on_mod) if sort is None else sort.prop in mod_props
            if use_mod or sort is None or sort.prop == "hs_object_id":
                desc = bool(sort and sort.desc)
                if use_mod:
                    index_prop: tuple[str, ...] = mod_props
                    keys: Sequence[Any] = table.modified
                else:
                    index_prop = ("hs_object_id",)
                    keys = table.active
                ranged = [
                    f
                    for f in filters
                    if f.prop in index_prop
                    and f.op in ("EQ", "GT", "GTE", "LT", "LTE", "BETWEEN")
                    and f.value is not None
                ]
                rest = [f for f in filters if f not in ranged]
                lo, hi = self._range(otype, keys, ranged, use_mod)
                if lo >= hi:
                    return lambda after, limit: (0, [])

                def id_at(pos: int) -> int:
                    item = keys[pos]
                    return int(item[1]) if use_mod else int(item)

                if not rest:

                    def page(after: int, limit: int) -> tuple[int, list[int]]:
                        total = hi - lo
                        if desc:
                            positions = range(hi - 1 - after, max(lo - 1, hi - 1 - after - limit), -1)
                        else:
                            positions = range(lo + after, min(hi, lo + after + limit))
                        return total, [id_at(p) for p in positions]

                    return page
                order = range(hi - 1, lo - 1, -1) if desc else range(lo, hi)
                matched = [
                    id_at(p) for p in order if all(self._match(otype, table.recs[id_at(p)], f) for f in rest)
                ]
                return lambda after, limit: (len(matched), matched[after : after + limit])
        # General path: scan, filter (OR of ANDs), sort with ties broken by id.
        found = [
            id_
            for id_ in table.active
            if (not groups or any(all(self._match(otype, table.recs[id_], f) for f in g) for g in groups))
            and (not query or self._query_match(otype, table.recs[id_], query))
        ]
        for s in reversed(sorts):

            def key(id_: int, prop: str = s.prop) -> tuple[bool, Any]:
                typed = self._typed(otype, prop, self.value(otype, table.recs[id_], prop))
                return typed is None, typed if typed is not None else 0

            found.sort(key=key, reverse=s.desc)
        return lambda after, limit: (len(found), found[after : after + limit])

    def _range(
        self, otype: str, keys: Sequence[Any], ranged: list[_Filter], use_mod: bool
    ) -> tuple[int, int]:
        """Positions [lo, hi) of ``keys`` (ints, or (ms, id) tuples) that satisfy every range filter."""
        lo, hi = 0, len(keys)

        def pos(v: int) -> int:
            probe: Any = (v, -1) if use_mod else v
            return bisect.bisect_left(keys, probe)

        for f in ranged:
            typed = self._typed(otype, f.prop, f.value)
            if typed is None:
                return 0, 0
            low_ceil, low_floor = math.ceil(typed), math.floor(typed)
            if f.op == "GTE":
                lo = max(lo, pos(low_ceil))
            elif f.op == "GT":
                lo = max(lo, pos(low_floor + 1))
            elif f.op == "LT":
                hi = min(hi, pos(low_ceil))
            elif f.op == "LTE":
                hi = min(hi, pos(low_floor + 1))
            elif f.op == "EQ":
                if low_ceil != low_floor:
                    return 0, 0
                lo, hi = max(lo, pos(low_ceil)), min(hi, pos(low_ceil + 1))
            elif f.op == "BETWEEN":
                high = self._typed(otype, f.prop, f.high)
                if high is None:
                    return 0, 0
                lo, hi = max(lo, pos(low_ceil)), min(hi, pos(math.floor(high) + 1))
        return lo, hi
