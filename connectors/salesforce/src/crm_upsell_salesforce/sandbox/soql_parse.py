"""The SOQL subset the Salesforce sandbox understands: a tokenizer, a parser and typed, compiled filters.

Accepted, and nothing else (everything else is ``MALFORMED_QUERY``)::

    SELECT field, field, Parent.Field FROM Object
      [WHERE cond [AND|OR cond]...]          -- parentheses group; AND and OR need parentheses to mix
      [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
      [LIMIT n]

``cond`` is ``field op value`` with ``op`` one of ``= != < <= > >= LIKE``, or ``field [NOT] IN (v, ...)``,
optionally negated with ``NOT``. Values are quoted strings (with Salesforce's escapes), numbers,
``true``/``false``/``null``, datetimes (``2026-01-01T00:00:00Z``, ``...00.000+0000``) and dates
(``2026-01-01``). Quoted values are data: nothing inside quotes is ever parsed as SOQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "BoolOp",
    "Condition",
    "Expr",
    "Lit",
    "Not",
    "OrderItem",
    "Query",
    "SoqlError",
    "id15_to_18",
    "parse_datetime_ms",
    "parse_soql",
    "quote",
    "referenced_fields",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

_KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "GROUP",
        "HAVING",
        "WITH",
        "FOR",
        "USING",
        "TYPEOF",
        "INCLUDES",
        "EXCLUDES",
        "TRUE",
        "FALSE",
        "NULL",
    }
)
_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
}
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT:])")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPERATOR = re.compile(r"!=|<=|>=|<>|=|<|>")
_SPACE = re.compile(r"\s+")
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class SoqlError(Exception):
    """A query the sandbox refuses; ``error_code`` is Salesforce's (MALFORMED_QUERY, INVALID_FIELD...)."""

    def __init__(self, message: str, error_code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


# ---- helpers --------------------------------------------------------------------------------------


def quote(value: str) -> str:
    """``value`` as a SOQL string literal, escaped the way Salesforce documents."""
    out = value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    out = out.replace("\b", "\\b").replace("\f", "\\f")
    return f"'{out}'"


def id15_to_18(value: str) -> str:
    """The case-safe 18-character form of a 15-character Salesforce id (18-char ids pass through)."""
    if len(value) != 15:
        return value
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(value[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM_CHARS[bits]
    return value + suffix


def parse_datetime_ms(text: str) -> int | None:
    """Epoch milliseconds from an ISO-8601 datetime (``Z``, ``+0000`` or ``+00:00``); None if invalid."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    match = re.search(r"([+-])(\d{2})(\d{2})$", raw)
    if match and raw[-5] in "+-" and ":" not in raw[-6:]:
        raw = f"{raw[:-5]}{match.group(1)}{match.group(2)}:{match.group(3)}"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


# ---- syntax tree ----------------------------------------------------------------------------------

LitKind = Literal["string", "number", "boolean", "null", "datetime", "date"]


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal value; ``pattern`` is the LIKE regular expression for strings."""

    kind: LitKind
    value: Any
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Lit | tuple[Lit, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["AND", "OR"]
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr = Condition | BoolOp | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: str
    desc: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Expr | None
    order_by: tuple[OrderItem, ...]
    limit: int | None


# ---- tokenizer ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # kw, ident, op, punct, string, number, datetime, date, eof
    text: str
    pos: int
    lit: Lit | None = None


def _string(text: str, start: int) -> tuple[Lit, int]:
    """Read a quoted string starting at ``text[start] == "'"``; returns the literal and the end index."""
    value: list[str] = []
    pattern: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return Lit("string", "".join(value), "".join(pattern)), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                value.append(_ESCAPES[nxt])
                pattern.append(re.escape(_ESCAPES[nxt]))
            elif nxt in "%_":
                # Only meaningful in LIKE: a literal % or _.
                value.append("\\" + nxt)
                pattern.append(re.escape(nxt))
            else:
                raise SoqlError(f"Invalid string literal at column {i + 1}: illegal escape sequence \\{nxt}")
            i += 2
            continue
        value.append(ch)
        pattern.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    raise SoqlError(f"unterminated string literal starting at column {start + 1}")


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        space = _SPACE.match(text, i)
        if space:
            i = space.end()
            continue
        ch = text[i]
        if ch == "'":
            lit, end = _string(text, i)
            tokens.append(_Tok("string", text[i:end], i, lit))
            i = end
            continue
        if ch in "(),":
            tokens.append(_Tok("punct", ch, i))
            i += 1
            continue
        for kind, rx in (("datetime", _DATETIME), ("date", _DATE), ("number", _NUMBER)):
            m = rx.match(text, i)
            if m:
                tokens.append(_Tok(kind, m.group(), i))
                i = m.end()
                break
        else:
            m = _IDENT.match(text, i)
            if m:
                word = m.group()
                kind = "kw" if word.upper() in _KEYWORDS else "ident"
                tokens.append(_Tok(kind, word.upper() if kind == "kw" else word, i))
                i = m.end()
                continue
            m = _OPERATOR.match(text, i)
            if m:
                if m.group() == "<>":
                    raise SoqlError(f"unexpected token: '<>' at column {i + 1}")
                tokens.append(_Tok("op", m.group(), i))
                i = m.end()
                continue
            raise SoqlError(f"unexpected character '{ch}' at column {i + 1}")
    tokens.append(_Tok("eof", "<EOF>", n))
    return tokens


# ---- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def fail(self, what: str = "") -> SoqlError:
        tok = self.tok
        detail = f": {what}" if what else ""
        return SoqlError(f"unexpected token: '{tok.text}' at column {tok.pos + 1}{detail}")

    def next(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def accept_kw(self, *words: str) -> bool:
        if self.tok.kind == "kw" and self.tok.text in words:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            raise self.fail(f"expected {word}")

    def accept_punct(self, ch: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == ch:
            self.i += 1
            return True
        return False

    def field(self) -> str:
        tok = self.tok
        if tok.kind != "ident":
            raise self.fail("expected a field name")
        if tok.text.count(".") > 1:
            raise SoqlError(
                f"relationship '{tok.text}' at column {tok.pos + 1}: only one level of parent "
                "relationship is supported"
            )
        self.i += 1
        if self.tok.kind == "punct" and self.tok.text == "(":
            raise SoqlError(f"functions are not supported: '{tok.text}(' at column {tok.pos + 1}")
        return tok.text

    def query(self) -> Query:
        self.expect_kw("SELECT")
        fields = [self.field()]
        while self.accept_punct(","):
            fields.append(self.field())
        self.expect_kw("FROM")
        if self.tok.kind != "ident" or "." in self.tok.text:
            raise self.fail("expected an object name")
        sobject = self.next().text
        where: Expr | None = None
        if self.accept_kw("WHERE"):
            where = self.expr()
        order: list[OrderItem] = []
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.accept_punct(","):
                order.append(self.order_item())
        limit: int | None = None
        if self.accept_kw("LIMIT"):
            tok = self.tok
            if tok.kind != "number" or not tok.text.isdigit():
                raise self.fail("LIMIT needs a non-negative integer")
            self.i += 1
            limit = int(tok.text)
        if self.tok.kind != "eof":
            raise self.fail()
        return Query(tuple(fields), sobject, where, tuple(order), limit)

    def order_item(self) -> OrderItem:
        name = self.field()
        desc = False
        if self.accept_kw("DESC"):
            desc = True
        else:
            self.accept_kw("ASC")
        nulls_last = desc
        if self.accept_kw("NULLS"):
            if self.accept_kw("LAST"):
                nulls_last = True
            else:
                self.expect_kw("FIRST")
                nulls_last = False
        return OrderItem(name, desc, nulls_last)

    def expr(self) -> Expr:
        items = [self.term()]
        joiner: str | None = None
        while self.tok.kind == "kw" and self.tok.text in ("AND", "OR"):
            word = self.tok.text
            if joiner is not None and word != joiner:
                raise self.fail("use parentheses to mix AND and OR")
            joiner = word
            self.i += 1
            items.append(self.term())
        if joiner is None:
            return items[0]
        return BoolOp("AND" if joiner == "AND" else "OR", tuple(items))

    def term(self) -> Expr:
        if self.accept_kw("NOT"):
            return Not(self.term())
        if self.accept_punct("("):
            inner = self.expr()
            if not self.accept_punct(")"):
                raise self.fail("expected ')'")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        name = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            return Condition(name, tok.text, self.value())
        if self.accept_kw("LIKE"):
            value = self.value()
            if value.kind != "string":
                raise SoqlError(f"LIKE needs a quoted string for field {name}")
            return Condition(name, "LIKE", value)
        negated = self.accept_kw("NOT")
        if self.accept_kw("IN"):
            if not self.accept_punct("("):
                raise self.fail("expected '(' after IN")
            if self.tok.kind == "kw" and self.tok.text == "SELECT":
                raise SoqlError("semi-join subqueries are not supported")
            values = [self.value()]
            while self.accept_punct(","):
                values.append(self.value())
            if not self.accept_punct(")"):
                raise self.fail("expected ')'")
            return Condition(name, "NOT IN" if negated else "IN", tuple(values))
        raise self.fail("expected an operator")

    def value(self) -> Lit:
        tok = self.next()
        if tok.kind == "string" and tok.lit is not None:
            return tok.lit
        if tok.kind == "number":
            return Lit("number", float(tok.text))
        if tok.kind == "datetime":
            ms = parse_datetime_ms(tok.text)
            if ms is None:
                raise SoqlError(f"invalid datetime literal '{tok.text}' at column {tok.pos + 1}")
            return Lit("datetime", ms)
        if tok.kind == "date":
            try:
                datetime.strptime(tok.text, "%Y-%m-%d")
            except ValueError:
                raise SoqlError(f"invalid date literal '{tok.text}' at column {tok.pos + 1}") from None
            return Lit("date", tok.text)
        if tok.kind == "kw" and tok.text in ("TRUE", "FALSE"):
            return Lit("boolean", tok.text == "TRUE")
        if tok.kind == "kw" and tok.text == "NULL":
            return Lit("null", None)
        self.i -= 1
        raise self.fail("expected a value")


def parse_soql(text: str) -> Query:
    """Parse one query of the supported subset or raise :class:`SoqlError` (MALFORMED_QUERY)."""
    if not text or not text.strip():
        raise SoqlError("empty query")
    parser = _Parser(text)
    query = parser.query()
    seen: set[str] = set()
    for name in query.fields:
        if name.lower() in seen:
            raise SoqlError(f"duplicate field selected: {name}")
        seen.add(name.lower())
    return query


def referenced_fields(expr: Expr | None) -> list[str]:
    """Every field named in a WHERE expression (for resolving names before evaluation)."""
    if expr is None:
        return []
    if isinstance(expr, Condition):
        return [expr.field]
    if isinstance(expr, Not):
        return referenced_fields(expr.item)
    out: list[str] = []
    for item in expr.items:
        out.extend(referenced_fields(item))
    return out
