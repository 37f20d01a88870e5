"""Runs a parsed COQL query against the sandbox org: column checks, literal coercion, filtering, order, limit.

Literals are coerced once per query to the column's type (datetimes to epoch seconds, lookups to ids,
text compared case-insensitively) and compared as data. A top-level ``and`` on ``Modified_Time`` or
``Created_Time`` ranges, or on ``id`` equality, narrows the scan through the sorted indexes.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any

from crm_upsell_zoho.sandbox.coql_parse import And, Cond, Expr, Literal, Or, Query
from crm_upsell_zoho.sandbox.org import Org
from crm_upsell_zoho.sandbox.store import FieldDef, Rec, parse_zoho_time

__all__ = ["COQL_LIMIT_MAX", "QueryError", "run_coql"]

COQL_LIMIT_MAX = 2_000
COQL_DEFAULT_LIMIT = 200
COQL_OFFSET_MAX = 100_000
_SELECT_MAX = 50
_TEXT = frozenset({"text", "textarea", "email", "website", "phone", "picklist"})
_NUMBER = frozenset({"integer", "bigint", "double", "currency", "percent", "decimal"})

Getter = Callable[[Rec], Any]
Predicate = Callable[[Rec], bool]


class QueryError(Exception):
    """A COQL query that parses but cannot run: ``code`` / ``details`` as Zoho answers them."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class _Column:
    """How to read one (possibly dotted) column and coerce literals compared with it."""

    def __init__(self, org: Org, module: str, name: str, clause: str) -> None:
        self.org, self.module, self.name = org, module, name
        head, _, tail = name.partition(".")
        defs = org.modules[module].fields
        if head == "id" and not tail:
            self.kind = "id"
            self.fd: FieldDef | None = None
            self.get: Getter = lambda rec: rec.id
            return
        fd = defs.get(head)
        if fd is None or fd.data_type == "subform":
            raise QueryError(
                "INVALID_QUERY", "column given seems to be invalid", column_name=name, clause=clause
            )
        self.fd = fd
        if tail:
            target = fd.lookup_module
            if fd.data_type not in ("lookup", "ownerlookup"):
                raise QueryError(
                    "INVALID_QUERY", "column given seems to be invalid", column_name=name, clause=clause
                )
            if tail == "id":
                self.kind = "id"
                self.get = lambda rec: org.stored(module, rec, head)
                return
            if target in (None, "*") or tail not in org.modules[str(target)].fields:
                raise QueryError(
                    "INVALID_QUERY", "column given seems to be invalid", column_name=name, clause=clause
                )
            inner = _Column(org, str(target), tail, clause)
            self.kind, self.fd = inner.kind, inner.fd

            def dotted(rec: Rec) -> Any:
                ref = org.stored(module, rec, head)
                linked = org.find(str(target), int(ref)) if ref is not None else None
                return inner.get(linked) if linked is not None else None

            self.get = dotted
            return
        dt = fd.data_type
        self.kind = (
            "text"
            if dt in _TEXT
            else "number"
            if dt in _NUMBER
            else "id"
            if dt in ("lookup", "ownerlookup")
            else dt
        )
        if self.kind == "datetime":
            self.get = lambda rec: _seconds(org.stored(module, rec, head))
        elif self.kind == "text":
            self.get = lambda rec: _lower(org.stored(module, rec, head))
        else:
            self.get = lambda rec: org.stored(module, rec, head)

    def literal(self, value: Literal) -> Any:
        """The literal in the column's comparable form; raises INVALID_QUERY when it cannot be."""
        if value is None:
            return None
        bad = QueryError(
            "INVALID_QUERY", "invalid value given for the column", column_name=self.name, value=str(value)
        )
        kind = self.kind
        if kind == "id":
            text = str(value)
            if isinstance(value, bool) or not text.isdigit():
                raise bad
            return int(text)
        if kind == "text":
            if isinstance(value, bool):
                raise bad
            return str(value).lower()
        if kind == "number":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, int | float):
                return value
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise bad
        if kind == "datetime":
            ms = parse_zoho_time(str(value)) if isinstance(value, str) else None
            if ms is None:
                raise bad
            return ms // 1000
        if kind == "date":
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise bad
            return value
        raise bad


def _seconds(value: Any) -> int | None:
    return None if value is None else int(value) // 1000


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "%" else re.escape(ch) for ch in pattern.lower()), re.DOTALL)


def _compare(op: str, value: Any, lit: Any) -> bool:
    if value is None or lit is None:
        return False
    try:
        if op == "=":
            return bool(value == lit)
        if op == "!=":
            return bool(value != lit)
        if op == ">":
            return bool(value > lit)
        if op == ">=":
            return bool(value >= lit)
        if op == "<":
            return bool(value < lit)
        if op == "<=":
            return bool(value <= lit)
    except TypeError:
        return False
    return False


def _compile(org: Org, module: str, expr: Expr) -> Predicate:
    if isinstance(expr, And):
        parts = [_compile(org, module, p) for p in expr.parts]
        return lambda rec: all(p(rec) for p in parts)
    if isinstance(expr, Or):
        alts = [_compile(org, module, p) for p in expr.parts]
        return lambda rec: any(p(rec) for p in alts)
    col = _Column(org, module, expr.field, "where")
    get, op = col.get, expr.op
    if op in ("is null", "is not null"):
        want_null = op == "is null"
        return lambda rec: (get(rec) in (None, "")) == want_null
    if op in ("like", "not like"):
        if col.kind != "text":
            raise QueryError(
                "INVALID_QUERY", "invalid operator for the column", column_name=expr.field, operator=op
            )
        rx = _like(str(expr.values[0]))
        negate = op == "not like"
        return lambda rec: (v := get(rec)) is not None and (rx.fullmatch(v) is None) == negate
    lits = [col.literal(v) for v in expr.values]
    if op in ("in", "not in"):
        wanted = frozenset(lits)
        if op == "in":
            return lambda rec: (v := get(rec)) is not None and v in wanted
        return lambda rec: (v := get(rec)) is not None and v not in wanted
    if op == "between":
        low, high = lits
        return lambda rec: _compare(">=", get(rec), low) and _compare("<=", get(rec), high)
    lit = lits[0]
    return lambda rec: _compare(op, get(rec), lit)


def _candidates(org: Org, module: str, expr: Expr | None) -> list[int]:
    """Record ids worth testing: narrowed by a top-level time range or id match when there is one."""
    table = org.tables[module]
    conds = [expr] if isinstance(expr, Cond) else list(expr.parts) if isinstance(expr, And) else []
    for cond in conds:
        if not isinstance(cond, Cond) or cond.field != "id" or cond.op not in ("=", "in"):
            continue
        wanted = {int(str(v)) for v in cond.values if str(v).isdigit()}
        return sorted(i for i in wanted if i in table.recs)
    best: list[int] | None = None
    for cond in conds:
        if not isinstance(cond, Cond) or cond.field not in ("Modified_Time", "Created_Time"):
            continue
        if cond.op not in (">", ">=", "=", "between") or not isinstance(cond.values[0], str):
            continue
        ms = parse_zoho_time(cond.values[0])
        if ms is None:
            continue
        index = table.by_mod if cond.field == "Modified_Time" else table.by_created
        start = bisect.bisect_left(index, (ms // 1000 * 1000, -1))
        ids = [rid for _, rid in index[start:]]
        if best is None or len(ids) < len(best):
            best = ids
    if best is not None:
        return sorted(best)
    return list(table.by_id)


def run_coql(org: Org, query: Query) -> tuple[list[dict[str, Any]], bool]:
    """The rows of one page of the query and whether more match."""
    module = query.module
    if module not in org.modules:
        raise QueryError("INVALID_MODULE", "the module name given seems to be invalid", module=module)
    if len(query.fields) > _SELECT_MAX:
        raise QueryError("LIMIT_EXCEEDED", "too many columns in select", limit=_SELECT_MAX)
    if len(set(query.fields)) != len(query.fields):
        dup = next(f for f in query.fields if query.fields.count(f) > 1)
        raise QueryError("DUPLICATE_DATA", "duplicate column in select", column_name=dup)
    limit = COQL_DEFAULT_LIMIT if query.limit is None else query.limit
    if not 1 <= limit <= COQL_LIMIT_MAX:
        raise QueryError(
            "INVALID_QUERY", "limit given seems to be invalid", limit=query.raw_limit or str(limit)
        )
    if query.offset < 0 or query.offset + limit > COQL_OFFSET_MAX:
        raise QueryError("INVALID_QUERY", "offset given seems to be invalid", offset=str(query.offset))
    for name in query.fields:
        _Column(org, module, name, "select")  # rejects unknown columns
    orders = [(_Column(org, module, name, "order by"), desc) for name, desc in query.order_by]
    predicate = _compile(org, module, query.where) if query.where is not None else None
    table = org.tables[module]
    matched = [
        table.recs[rid]
        for rid in _candidates(org, module, query.where)
        if predicate is None or predicate(table.recs[rid])
    ]
    for col, desc in reversed(orders):
        getter = col.get
        present = [r for r in matched if getter(r) is not None]
        missing = [r for r in matched if getter(r) is None]
        present.sort(key=getter, reverse=desc)
        matched = present + missing if not desc else missing + present
    page = matched[query.offset : query.offset + limit]
    rows = [_row(org, module, rec, query.fields) for rec in page]
    return rows, query.offset + limit < len(matched)


def _row(org: Org, module: str, rec: Rec, fields: tuple[str, ...]) -> dict[str, Any]:
    defs = org.modules[module].fields
    out: dict[str, Any] = {}
    for name in fields:
        head, _, tail = name.partition(".")
        if name == "id":
            continue
        value = org.stored(module, rec, head)
        fd = defs[head]
        if tail:
            if value is None:
                out[name] = None
            elif tail == "id":
                out[name] = str(value)
            else:
                target = str(fd.lookup_module)
                linked = org.find(target, int(value))
                out[name] = (
                    org.render_value(target, linked, org.modules[target].fields[tail])
                    if linked is not None
                    else None
                )
            continue
        if fd.data_type in ("lookup", "ownerlookup"):
            out[name] = {"id": str(value)} if value is not None else None
            if fd.lookup_module == "*":
                out["$se_module"] = org.stored(module, rec, "$se_module")
        else:
            out[name] = org.render_value(module, rec, fd)
    out["id"] = str(rec.id)
    return out
