"""Typing and evaluation of parsed SOQL filters: conditions coerced to their field types, compiled to predicates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from crm_upsell_salesforce.sandbox.soql_parse import (
    BoolOp,
    Expr,
    Lit,
    Not,
    SoqlError,
    id15_to_18,
)

__all__ = ["TBool", "TCond", "TExpr", "TNot", "compile_where", "range_bounds"]

# ---- typing and evaluation ------------------------------------------------------------------------

_STRINGY = frozenset({"string", "textarea", "picklist", "email", "url", "phone", "id", "reference"})
_NUMERIC = frozenset({"double", "currency", "percent", "int"})


@dataclass(frozen=True, slots=True)
class TCond:
    """A condition with its field resolved to a canonical path and its value(s) coerced to that type."""

    path: str
    ftype: str
    op: str
    values: tuple[Any, ...]
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class TBool:
    op: Literal["AND", "OR"]
    items: tuple[TExpr, ...]


@dataclass(frozen=True, slots=True)
class TNot:
    item: TExpr


TExpr = TCond | TBool | TNot
Resolver = Callable[[str], tuple[str, str]]  # raw field -> (canonical path, field type)
Row = Callable[[str], Any]  # canonical path -> internal value


def _coerce(lit: Lit, path: str, ftype: str) -> Any:
    if lit.kind == "null":
        return None
    if ftype == "datetime":
        if lit.kind != "datetime":
            raise SoqlError(
                f"value of filter criterion for field '{path}' must be of type dateTime "
                "and should not be enclosed in quotes",
                "INVALID_FIELD",
            )
        return lit.value
    if ftype == "date":
        if lit.kind != "date":
            raise SoqlError(
                f"value of filter criterion for field '{path}' must be of type date "
                "and should not be enclosed in quotes",
                "INVALID_FIELD",
            )
        return lit.value
    if ftype == "boolean":
        if lit.kind != "boolean":
            raise SoqlError(
                f"value of filter criterion for field '{path}' must be true or false", "INVALID_FIELD"
            )
        return lit.value
    if ftype in _NUMERIC:
        if lit.kind != "number":
            raise SoqlError(
                f"value of filter criterion for field '{path}' must be of type {ftype} "
                "and should not be enclosed in quotes",
                "INVALID_FIELD",
            )
        return lit.value
    if lit.kind != "string":
        raise SoqlError(
            f"value of filter criterion for field '{path}' must be a quoted string", "INVALID_FIELD"
        )
    text = str(lit.value).replace("\\%", "%").replace("\\_", "_")
    if ftype in ("id", "reference"):
        return id15_to_18(text)
    return text.casefold()


def _typed(expr: Expr, resolve: Resolver) -> TExpr:
    if isinstance(expr, Not):
        return TNot(_typed(expr.item, resolve))
    if isinstance(expr, BoolOp):
        return TBool(expr.op, tuple(_typed(i, resolve) for i in expr.items))
    path, ftype = resolve(expr.field)
    op = expr.op
    if op == "LIKE":
        assert isinstance(expr.value, Lit)
        if ftype not in _STRINGY:
            raise SoqlError(
                f"invalid operator on {ftype} field: LIKE on '{path}'", "INVALID_QUERY_FILTER_OPERATOR"
            )
        rx = re.compile(f"(?s:{expr.value.pattern or ''})", re.IGNORECASE)
        return TCond(path, ftype, op, (), rx)
    if op in ("IN", "NOT IN"):
        assert isinstance(expr.value, tuple)
        return TCond(path, ftype, op, tuple(_coerce(v, path, ftype) for v in expr.value))
    assert isinstance(expr.value, Lit)
    value = _coerce(expr.value, path, ftype)
    if ftype == "boolean" and op not in ("=", "!="):
        raise SoqlError(f"invalid operator {op} on boolean field '{path}'", "INVALID_QUERY_FILTER_OPERATOR")
    if value is None and op not in ("=", "!="):
        raise SoqlError(f"invalid operator {op} with null on field '{path}'", "INVALID_QUERY_FILTER_OPERATOR")
    return TCond(path, ftype, op, (value,))


def _norm(value: Any, ftype: str) -> Any:
    if isinstance(value, str) and ftype not in ("id", "reference", "datetime", "date"):
        return value.casefold()
    return value


def _cond_fn(cond: TCond) -> Callable[[Row], bool]:
    path, ftype, op = cond.path, cond.ftype, cond.op
    if op == "LIKE":
        rx = cond.pattern
        assert rx is not None

        def like(row: Row) -> bool:
            value = row(path)
            return value is not None and rx.fullmatch(str(value)) is not None

        return like
    if op in ("IN", "NOT IN"):
        wanted = frozenset(cond.values)
        negate = op == "NOT IN"

        def member(row: Row) -> bool:
            value = _norm(row(path), ftype)
            if value is None:
                return negate and None not in wanted
            return (value in wanted) != negate

        return member
    target = cond.values[0]
    if op == "=":
        return lambda row: _norm(row(path), ftype) == target
    if op == "!=":
        return lambda row: _norm(row(path), ftype) != target

    def compare(row: Row) -> bool:
        value = _norm(row(path), ftype)
        if value is None:
            return False
        if op == "<":
            return bool(value < target)
        if op == "<=":
            return bool(value <= target)
        if op == ">":
            return bool(value > target)
        return bool(value >= target)

    return compare


def _fn(expr: TExpr) -> Callable[[Row], bool]:
    if isinstance(expr, TCond):
        return _cond_fn(expr)
    if isinstance(expr, TNot):
        inner = _fn(expr.item)
        return lambda row: not inner(row)
    parts = [_fn(i) for i in expr.items]
    if expr.op == "AND":
        return lambda row: all(p(row) for p in parts)
    return lambda row: any(p(row) for p in parts)


def compile_where(expr: Expr | None, resolve: Resolver) -> tuple[TExpr | None, Callable[[Row], bool]]:
    """Resolve and type-check ``expr``; returns the typed tree and a predicate over a row accessor."""
    if expr is None:
        return None, lambda row: True
    typed = _typed(expr, resolve)
    return typed, _fn(typed)


def range_bounds(expr: TExpr | None, paths: frozenset[str]) -> tuple[Any, Any]:
    """Inclusive (low, high) bounds any matching row's value of one of ``paths`` must lie within.

    ``None`` means unbounded. AND narrows, OR widens; NOT gives up. Used to start an index scan.
    """
    if expr is None:
        return None, None
    if isinstance(expr, TCond):
        if expr.path not in paths or not expr.values or expr.values[0] is None:
            return None, None
        if expr.op == "IN":
            if any(v is None for v in expr.values):
                return None, None
            return min(expr.values), max(expr.values)
        value = expr.values[0]
        if expr.op == "=":
            return value, value
        if expr.op in (">", ">="):
            return value, None
        if expr.op in ("<", "<="):
            return None, value
        return None, None
    if isinstance(expr, TNot):
        return None, None
    bounds = [range_bounds(i, paths) for i in expr.items]
    lows = [b[0] for b in bounds]
    highs = [b[1] for b in bounds]
    if expr.op == "AND":
        known_low = [v for v in lows if v is not None]
        known_high = [v for v in highs if v is not None]
        return (max(known_low) if known_low else None, min(known_high) if known_high else None)
    low = None if any(v is None for v in lows) else min(lows)
    high = None if any(v is None for v in highs) else max(highs)
    return low, high
