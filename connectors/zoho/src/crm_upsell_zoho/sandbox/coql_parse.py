"""A small parser for the subset of Zoho's COQL the sandbox answers (``POST /crm/v8/coql``).

Supported: ``select f1, f2 from Module [where <criteria>] [order by f [asc|desc], ...]
[limit offset, count | limit count [offset n]]``. Criteria combine ``and``/``or`` (``and`` binds tighter)
and parentheses over ``field op value`` with ``= != > >= < <=``, ``[not] like``, ``[not] in (...)``,
``between a and b``, ``is [not] null``. Values are single-quoted strings (``\\'`` escapes a quote),
numbers, ``true``/``false`` or ``null``. Values are tokenised as data and never re-read as syntax, so a
hostile string such as ``'x' or id is not null --`` stays one literal. Anything else is a
:class:`COQLSyntaxError` carrying the text near the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "And",
    "COQLSyntaxError",
    "Cond",
    "Expr",
    "Literal",
    "Or",
    "Query",
    "parse_coql",
]

Literal = str | int | float | bool | None


class COQLSyntaxError(ValueError):
    """The query does not fit the grammar; ``near`` is the text where parsing stopped."""

    def __init__(self, near: str, message: str = "error occured while parsing the query") -> None:
        super().__init__(message)
        self.near = near
        self.message = message


@dataclass(frozen=True, slots=True)
class Cond:
    field: str
    op: str  # = != > >= < <= like, not like, in, not in, between, is null, is not null
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Expr, ...]


Expr = Cond | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[str, ...]
    module: str
    where: Expr | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)
    offset: int
    limit: int | None
    raw_limit: str | None


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)
  | (?P<op>>=|<=|!=|<>|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "like",
        "in",
        "is",
        "null",
        "between",
        "order",
        "by",
        "asc",
        "desc",
        "limit",
        "offset",
        "true",
        "false",
    }
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # str num ident kw op punct eof
    text: str
    value: Any
    pos: int


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise COQLSyntaxError(text[pos : pos + 20])
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "str":
            toks.append(_Tok("str", raw, _unescape(raw[1:-1]), pos))
        elif kind == "num":
            toks.append(_Tok("num", raw, float(raw) if "." in raw else int(raw), pos))
        elif kind == "ident":
            low = raw.lower()
            if low in _KEYWORDS:
                toks.append(_Tok("kw", raw, low, pos))
            else:
                toks.append(_Tok("ident", raw, raw, pos))
        elif kind in ("op", "punct"):
            toks.append(_Tok(kind, raw, "!=" if raw == "<>" else raw, pos))
        pos = m.end()
    toks.append(_Tok("eof", "", None, len(text)))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def fail(self, tok: _Tok | None = None) -> COQLSyntaxError:
        tok = tok or self.peek()
        return COQLSyntaxError(tok.text or self.text[max(0, tok.pos - 20) :].strip() or "end of query")

    def kw(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "kw" and tok.value == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            raise self.fail()

    def ident(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise self.fail(tok)
        return str(tok.value)

    def punct(self, ch: str) -> bool:
        tok = self.peek()
        if tok.kind == "punct" and tok.value == ch:
            self.i += 1
            return True
        return False

    def parse(self) -> Query:
        self.expect_kw("select")
        fields = [self.ident()]
        while self.punct(","):
            fields.append(self.ident())
        self.expect_kw("from")
        module = self.ident()
        where: Expr | None = None
        if self.kw("where"):
            where = self.expr()
        order: list[tuple[str, bool]] = []
        if self.kw("order"):
            self.expect_kw("by")
            while True:
                name = self.ident()
                desc = False
                if self.kw("desc"):
                    desc = True
                else:
                    self.kw("asc")
                order.append((name, desc))
                if not self.punct(","):
                    break
        offset, limit, raw_limit = 0, None, None
        if self.kw("limit"):
            first = self.next()
            if first.kind != "num" or not isinstance(first.value, int):
                raise COQLSyntaxError(first.text or "limit")
            raw_limit = first.text
            limit = first.value
            if self.punct(","):
                second = self.next()
                if second.kind != "num" or not isinstance(second.value, int):
                    raise COQLSyntaxError(second.text or "limit")
                offset, limit, raw_limit = first.value, second.value, second.text
            elif self.kw("offset"):
                third = self.next()
                if third.kind != "num" or not isinstance(third.value, int):
                    raise COQLSyntaxError(third.text or "offset")
                offset = third.value
        if self.peek().kind != "eof":
            raise self.fail()
        return Query(tuple(fields), module, where, tuple(order), offset, limit, raw_limit)

    def expr(self) -> Expr:
        parts = [self.term()]
        while self.kw("or"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self) -> Expr:
        parts = [self.factor()]
        while self.kw("and"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self) -> Expr:
        if self.punct("("):
            inner = self.expr()
            if not self.punct(")"):
                raise self.fail()
            return inner
        return self.cond()

    def value(self) -> Literal:
        tok = self.next()
        if tok.kind in ("str", "num"):
            literal: Literal = tok.value
            return literal
        if tok.kind == "kw" and tok.value in ("true", "false"):
            return bool(tok.value == "true")
        if tok.kind == "kw" and tok.value == "null":
            return None
        raise self.fail(tok)

    def cond(self) -> Cond:
        field = self.ident()
        tok = self.peek()
        if tok.kind == "op":
            self.next()
            return Cond(field, str(tok.value), (self.value(),))
        negate = self.kw("not")
        if self.kw("like"):
            val = self.value()
            if not isinstance(val, str):
                raise self.fail()
            return Cond(field, "not like" if negate else "like", (val,))
        if self.kw("in"):
            if not self.punct("("):
                raise self.fail()
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                raise self.fail()
            return Cond(field, "not in" if negate else "in", tuple(values))
        if negate:
            raise self.fail()
        if self.kw("between"):
            low = self.value()
            self.expect_kw("and")
            return Cond(field, "between", (low, self.value()))
        if self.kw("is"):
            neg = self.kw("not")
            self.expect_kw("null")
            return Cond(field, "is not null" if neg else "is null", ())
        raise self.fail()


def parse_coql(text: str) -> Query:
    """Parse one COQL select statement; raises :class:`COQLSyntaxError`."""
    if not text.strip():
        raise COQLSyntaxError("")
    return _Parser(text).parse()
