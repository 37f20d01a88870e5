"""SOQL ``query``/``queryAll`` and query locators (``nextRecordsUrl``), REST and Tooling."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    BATCH_SIZE,
    LOCATOR_PREFIX,
    MAX_CURSORS,
    MIN_BATCH,
    MODSTAMP_FIELDS,
    Fail,
    make_id,
)
from crm_upsell_salesforce.sandbox.schema import (
    SObject,
)
from crm_upsell_salesforce.sandbox.soql_eval import TBool, TCond, TExpr, compile_where, range_bounds
from crm_upsell_salesforce.sandbox.soql_parse import (
    Query,
    SoqlError,
    parse_soql,
    referenced_fields,
)
from crm_upsell_salesforce.sandbox.store import (
    Column,
    Cursor,
    Rec,
    Row,
    Table,
)


class QueryApi(OrgBase):
    """Open queries, their batches and their locators."""

    def _resolver(self, sobj: SObject, schema: dict[str, SObject]) -> Callable[[str], tuple[str, str]]:
        def resolve(raw: str) -> tuple[str, str]:
            if "." in raw:
                rel_raw, fname = raw.split(".", 1)
                rel = sobj.relationships.get(rel_raw.lower())
                if rel is None:
                    raise SoqlError(
                        f"Didn't understand relationship '{rel_raw}' in field path. If you are attempting "
                        "to use a custom relationship, be sure to append the '__r' after the custom "
                        "relationship name.",
                        "INVALID_FIELD",
                    )
                target = schema[rel[2]]
                fdef = self.visible_field(target, fname)
                if fdef is None:
                    raise SoqlError(f"No such column '{fname}' on entity '{target.name}'.", "INVALID_FIELD")
                return f"{rel[0]}.{fdef.name}", fdef.type
            fdef = self.visible_field(sobj, raw)
            if fdef is None:
                raise SoqlError(
                    f"No such column '{raw}' on entity '{sobj.name}'. If you are attempting to use a "
                    "custom field, be sure to append the '__c' after the custom field name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                    "INVALID_FIELD",
                )
            return fdef.name, fdef.type

        return resolve

    def _row(self, otype: str, rec: Rec, sobj: SObject) -> Row:
        def row(path: str) -> Any:
            if "." not in path:
                return self.value(otype, rec, path)
            rel, fname = path.split(".", 1)
            _rel, fk, target = sobj.relationships[rel.lower()]
            pid = self.value(otype, rec, fk)
            parent = self.tables[target].live(pid) if isinstance(pid, str) else None
            return None if parent is None else self.value(target, parent, fname)

        return row

    def open_query(self, text: str, *, all_rows: bool, tooling: bool, batch: int) -> Cursor:
        query = parse_soql(text)
        schema = self.tooling_schema if tooling else self.schema
        tables = self.tooling_tables if tooling else self.tables
        sobj = next((s for n, s in schema.items() if n.lower() == query.sobject.lower()), None)
        if sobj is None:
            raise SoqlError(
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
                "INVALID_TYPE",
            )
        resolve = self._resolver(sobj, schema)
        columns: list[Column] = []
        for raw in query.fields:
            path, ftype = resolve(raw)
            if "." in path:
                rel, fname = path.split(".", 1)
                _r, fk, target = sobj.relationships[rel.lower()]
                columns.append(Column(fname, ftype, rel, fk, target))
            else:
                columns.append(Column(path, ftype))
        for raw in referenced_fields(query.where):
            resolve(raw)
        typed, predicate = compile_where(query.where, resolve)
        order = [(resolve(o.field), o) for o in query.order_by]
        order_paths = [(path, o.desc) for (path, _t), o in order]
        table = tables[sobj.name]
        kind = "list"
        low: Any = None
        high: Any = None
        if not order_paths or order_paths == [("Id", False)]:
            kind = "id"
            low, high = range_bounds(typed, frozenset({"Id"}))
        elif order_paths[0] in (("SystemModstamp", False), ("LastModifiedDate", False)) and order_paths[
            1:
        ] in (
            [],
            [("Id", False)],
        ):
            kind = "modstamp"
            low, high = range_bounds(typed, MODSTAMP_FIELDS)
        self._locators += 1
        locator = make_id(LOCATOR_PREFIX, self._locators)
        cursor = Cursor(
            locator=locator,
            sobject=sobj.name,
            tooling=tooling,
            all_rows=all_rows,
            kind=kind,
            predicate=predicate,
            columns=columns,
            low=low,
            high=high,
            limit=query.limit,
            batch=batch,
            total=0,
            positions={},
        )
        if kind == "list":
            cursor.snapshot = self._sorted_matches(cursor, table, sobj, query, order)
            cursor.total = len(cursor.snapshot)
            cursor.positions[0] = ("at", 0)
        else:
            cursor.total = self._count(cursor, table, sobj, typed)
            start: Any = (low if low is not None else -1, "") if kind == "modstamp" else (low or "")
            cursor.positions[0] = ("left", start)
        if query.limit is not None:
            cursor.total = min(cursor.total, query.limit)
        return cursor

    def _matches(self, cursor: Cursor, table: Table, sobj: SObject, rec: Rec) -> bool:
        if not cursor.all_rows and (rec.deleted_ms is not None or rec.id in table.archived):
            return False
        return cursor.predicate(self._row(table.name, rec, sobj))

    def _count(self, cursor: Cursor, table: Table, sobj: SObject, typed: TExpr | None) -> int:
        pure = _pure_modstamp_range(typed) if cursor.kind == "modstamp" else None
        if cursor.kind == "modstamp" and (typed is None or pure is not None):
            lo, lo_incl, hi, hi_incl = pure or (None, True, None, True)

            def span(index: list[tuple[int, str]]) -> int:
                start = 0 if lo is None else bisect.bisect_left(index, (lo if lo_incl else lo + 1, ""))
                end = len(index) if hi is None else bisect.bisect_left(index, (hi + 1 if hi_incl else hi, ""))
                return max(0, end - start)

            total = span(table.modified)
            if cursor.all_rows:
                return total

            def within(ms: int) -> bool:
                above = lo is None or (ms >= lo if lo_incl else ms > lo)
                below = hi is None or (ms <= hi if hi_incl else ms < hi)
                return above and below

            archived = sum(
                1
                for i in table.archived
                if table.recs[i].deleted_ms is None and within(table.recs[i].modified_ms)
            )
            return total - span(table.deleted) - archived
        if cursor.kind == "id" and typed is None:
            if cursor.all_rows:
                return len(table.ids)
            archived = sum(1 for i in table.archived if table.recs[i].deleted_ms is None)
            return len(table.ids) - len(table.deleted) - archived
        count = 0
        for rec in self._scan(cursor, table, ("left", self._start_key(cursor))):
            if self._matches(cursor, table, sobj, rec):
                count += 1
                if cursor.limit is not None and count >= cursor.limit:
                    break
        return count

    @staticmethod
    def _start_key(cursor: Cursor) -> Any:
        if cursor.kind == "modstamp":
            return (cursor.low if cursor.low is not None else -1, "")
        return cursor.low or ""

    def _scan(self, cursor: Cursor, table: Table, position: tuple[str, Any]) -> Iterable[Rec]:
        """Records from ``position`` in index order until past the query's upper bound."""
        side, key = position
        if cursor.kind == "modstamp":
            index = table.modified
            i = bisect.bisect_left(index, key) if side == "left" else bisect.bisect_right(index, key)
            while i < len(index):
                ms, id_ = index[i]
                if cursor.high is not None and ms > cursor.high:
                    return
                yield table.recs[id_]
                i += 1
        else:
            ids = table.ids
            i = bisect.bisect_left(ids, key) if side == "left" else bisect.bisect_right(ids, key)
            while i < len(ids):
                id_ = ids[i]
                if cursor.high is not None and id_ > cursor.high:
                    return
                yield table.recs[id_]
                i += 1

    def _sorted_matches(
        self, cursor: Cursor, table: Table, sobj: SObject, query: Query, order: list[Any]
    ) -> list[str]:
        recs = [table.recs[i] for i in table.ids if self._matches(cursor, table, sobj, table.recs[i])]
        rows = {rec.id: self._row(table.name, rec, sobj) for rec in recs}
        for (path, ftype), item in reversed(order):
            # Nulls go first or last whatever the direction (reverse=True flips the rank too).
            null_rank = int(item.nulls_last) if not item.desc else int(not item.nulls_last)

            def key(rec: Rec, path: str = path, ftype: str = ftype, null_rank: int = null_rank) -> Any:
                value = rows[rec.id](path)
                if value is None:
                    return (null_rank, 0)
                if isinstance(value, str) and ftype not in ("id", "reference"):
                    value = value.casefold()
                return (1 - null_rank, value)

            recs.sort(key=key, reverse=item.desc)
        ids = [r.id for r in recs]
        return ids[: query.limit] if query.limit is not None else ids

    def fetch(self, cursor: Cursor, offset: int, version: str, base: str) -> dict[str, Any]:
        """One batch of an open query, starting ``offset`` records in."""
        position = cursor.positions.get(offset)
        if position is None:
            raise Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        table = (self.tooling_tables if cursor.tooling else self.tables)[cursor.sobject]
        sobj = self._sobject(cursor.sobject)
        want = cursor.batch
        if cursor.limit is not None:
            want = max(0, min(want, cursor.limit - offset))
        records: list[dict[str, Any]] = []
        exhausted = True
        if cursor.kind == "list":
            assert cursor.snapshot is not None
            at = int(position[1])
            chunk = cursor.snapshot[at : at + want]
            for id_ in chunk:
                rec = table.recs.get(id_)
                if rec is not None:
                    records.append(
                        self.record_json(cursor.sobject, rec, cursor.columns, version, cursor.tooling)
                    )
            new_position: tuple[str, Any] = ("at", at + len(chunk))
            exhausted = at + len(chunk) >= len(cursor.snapshot)
        else:
            new_position = position
            if want > 0:
                for rec in self._scan(cursor, table, position):
                    new_position = (
                        "right",
                        (rec.modified_ms, rec.id) if cursor.kind == "modstamp" else rec.id,
                    )
                    if self._matches(cursor, table, sobj, rec):
                        records.append(
                            self.record_json(cursor.sobject, rec, cursor.columns, version, cursor.tooling)
                        )
                        if len(records) >= want:
                            exhausted = False
                            break
        next_offset = offset + len(records)
        done = exhausted or next_offset >= cursor.total
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        if not done:
            cursor.positions[next_offset] = new_position
            body["nextRecordsUrl"] = f"{base}/{cursor.locator}-{next_offset}"
        # A finished cursor stays (until evicted) so a retried last page answers the same.
        body["records"] = records
        return body

    def remember(self, cursor: Cursor) -> None:
        self.cursors[cursor.locator] = cursor
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)

    def query(self, request: Request, *, all_rows: bool, tooling: bool = False) -> Response:
        version = str(request.path_params["version"])
        text = request.query_params.get("q")
        if text is None:
            raise Fail(400, "MALFORMED_QUERY", "A query string has to be specified")
        batch = _batch_size(request.headers.get("sforce-query-options"))
        try:
            cursor = self.open_query(text, all_rows=all_rows, tooling=tooling, batch=batch)
        except SoqlError as exc:
            raise Fail(400, exc.error_code, exc.message) from None
        if not tooling and self.query_timeout_rows is not None and cursor.total > self.query_timeout_rows:
            # A query that runs too long is cancelled: REST API Developer Guide, "Status Codes and
            # Error Responses"; SOQL and SOSL Reference, "Working with Very Large SOQL Queries" (make
            # the query selective). Here "too long" is more matching rows than the limit set.
            raise Fail(400, "QUERY_TIMEOUT", "Your query request was running for too long.")
        self.remember(cursor)
        base = f"/services/data/{version}/tooling/query" if tooling else f"/services/data/{version}/query"
        body = self.fetch(cursor, 0, version, base)
        return JSONResponse(_tooling_shape(body, cursor) if tooling else body)

    def query_more(self, request: Request, *, tooling: bool = False) -> Response:
        version = str(request.path_params["version"])
        raw = str(request.path_params["locator"])
        locator, _, offset = raw.rpartition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit() or cursor.tooling != tooling:
            raise Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.served += 1
        if self.locator_batches is not None and cursor.served >= self.locator_batches:
            # Locators expire (after 15 minutes of inactivity, or when the user opens more cursors
            # than the org allows: SOQL and SOSL Reference, "query()" and "queryMore()"; Salesforce
            # Developer Limits, "API Query Cursor Limits"). Here: after ``locator_batches`` batches.
            self.cursors.pop(locator, None)
            raise Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        base = f"/services/data/{version}/tooling/query" if tooling else f"/services/data/{version}/query"
        body = self.fetch(cursor, int(offset), version, base)
        return JSONResponse(_tooling_shape(body, cursor) if tooling else body)

    # -- getDeleted


def _pure_modstamp_range(typed: TExpr | None) -> tuple[int | None, bool, int | None, bool] | None:
    """(low, low inclusive, high, high inclusive) if ``typed`` only bounds SystemModstamp; else None."""
    if typed is None:
        return None
    conds: list[TCond] = []
    if isinstance(typed, TCond):
        conds = [typed]
    elif isinstance(typed, TBool) and typed.op == "AND" and all(isinstance(i, TCond) for i in typed.items):
        conds = [i for i in typed.items if isinstance(i, TCond)]
    else:
        return None
    lo: int | None = None
    hi: int | None = None
    lo_incl = hi_incl = True
    for c in conds:
        if c.path not in MODSTAMP_FIELDS or c.op not in ("=", ">", ">=", "<", "<=") or c.values[0] is None:
            return None
        v = int(c.values[0])
        if c.op in (">", ">=", "="):
            incl = c.op != ">"
            if lo is None or v > lo or (v == lo and not incl):
                lo, lo_incl = v, incl
        if c.op in ("<", "<=", "="):
            incl = c.op != "<"
            if hi is None or v < hi or (v == hi and not incl):
                hi, hi_incl = v, incl
    return lo, lo_incl, hi, hi_incl


def _batch_size(header: str | None) -> int:
    """``Sforce-Query-Options: batchSize=N`` (200-2000) or the default 2000."""
    if not header:
        return BATCH_SIZE
    match = re.search(r"batchSize\s*=\s*(\d+)", header, re.IGNORECASE)
    if match is None:
        return BATCH_SIZE
    return max(MIN_BATCH, min(BATCH_SIZE, int(match.group(1))))


def _tooling_shape(body: dict[str, Any], cursor: Cursor) -> dict[str, Any]:
    return {
        "size": len(body["records"]),
        "totalSize": body["totalSize"],
        "done": body["done"],
        "queryLocator": None if body["done"] else cursor.locator,
        "entityTypeName": cursor.sobject,
        **({"nextRecordsUrl": body["nextRecordsUrl"]} if "nextRecordsUrl" in body else {}),
        "records": body["records"],
    }
