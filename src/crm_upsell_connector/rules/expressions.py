"""CEL expressions: compile once at load, check names and types, evaluate safely per account.

CEL (through ``common-expression-language``) cannot run code, loop forever or touch anything but
the values it is given. Every expression is compiled when the config loads; its names are checked
against the feature schema and it is executed once against a sample context so that a type
mistake (``seats + 1`` on a double) fails the load, not the nightly run. At evaluation time an
error, usually a null where a number was expected, is returned, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import cel

from crm_upsell_connector.errors import RuleError
from crm_upsell_connector.features import FeatureSpec

ResultType = Literal["bool", "number", "string", "any"]

_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_STRING_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one evaluation gave: a value, or the error that stopped it (never both)."""

    value: Any = None
    error: str | None = None


def _position(source: str, offset: int) -> str:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def _name_position(source: str, name: str, *, call: bool = False) -> str:
    masked = _STRING_LITERAL.sub(lambda m: " " * len(m.group(0)), source)
    pattern = rf"(?<!\w){re.escape(name)}\s*\(" if call else rf"(?<![\w.]){re.escape(name)}(?!\w)"
    match = re.search(pattern, masked)
    return _position(source, match.start()) if match else "1:1"


def _sample(spec: FeatureSpec, map_keys: Iterable[str]) -> Any:
    if spec.type == "number":
        return 1.0
    if spec.type == "string":
        return "x"
    if spec.type == "bool":
        return True
    if spec.type == "list":
        return ["x"]
    return dict.fromkeys(map_keys, 1.0) or {"x": 1.0}


def sample_context(schema: Mapping[str, FeatureSpec], map_keys: Iterable[str]) -> dict[str, Any]:
    """A context with one value of the right type per name, for the load-time type check."""
    keys = sorted(set(map_keys))
    return {name: _sample(spec, keys) for name, spec in schema.items()}


def type_name(value: Any) -> str:
    """The CEL-facing name of a Python value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


class Expression:
    """One compiled CEL expression with the feature names it reads."""

    __slots__ = ("key", "names", "program", "result", "source")

    def __init__(self, source: str, key: str, program: Any, names: tuple[str, ...], result: ResultType):
        self.source = source
        self.key = key
        self.program = program
        self.names = names
        self.result = result

    def __repr__(self) -> str:
        return f"Expression({self.key}={self.source!r})"

    def evaluate(self, context: Mapping[str, Any]) -> Outcome:
        """Run against one account's values; an error (a null, a missing map key) is returned."""
        # Only the names the expression reads cross into CEL: converting a whole context costs 20x.
        try:
            value = self.program.execute({n: context.get(n) for n in self.names})
        except Exception as exc:  # CEL raises TypeError, KeyError, RuntimeError, ZeroDivisionError...
            return Outcome(error=_short_error(exc))
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.result == "bool" and not isinstance(value, bool):
            return Outcome(error=f"gave {type_name(value)}, not a bool")
        if self.result == "number" and value is not None and not isinstance(value, float):
            return Outcome(error=f"gave {type_name(value)}, not a number")
        return Outcome(value=value)

    def test(self, context: Mapping[str, Any]) -> tuple[bool | None, str | None]:
        """A condition's verdict: ``(True|False, None)``, or ``(None, error)`` counted as not met."""
        try:
            value = self.program.execute({n: context.get(n) for n in self.names})
        except Exception as exc:  # as in evaluate(): a null where a value was needed
            return None, _short_error(exc)
        if value is True or value is False:
            return value, None
        return None, f"gave {type_name(value)}, not a bool"


def _short_error(exc: BaseException) -> str:
    text = str(exc).split(". ", 1)[0].strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"no key {text} in map"
    return text


def compile_expression(
    source: str,
    *,
    file: str,
    key: str,
    schema: Mapping[str, FeatureSpec],
    sample: Mapping[str, Any],
    result: ResultType,
) -> Expression:
    """Compile and check one expression; every mistake raises ``RuleError`` naming file and key."""
    where = f"{file}: {key}"
    if not source.strip():
        raise RuleError(f"{where}: the expression is empty")
    try:
        program = cel.compile(source)
    except ValueError as exc:
        message = str(exc)
        match = _POSITION.search(message)
        if match:
            line, column, what = match.groups()
            raise RuleError(f"{where}: syntax error at {line}:{column}: {what.strip()}") from None
        raise RuleError(f"{where}: syntax error: {message.splitlines()[0]}") from None
    bound = set(_MACRO_VARIABLE.findall(source))
    names = tuple(sorted(n for n in program.variables() if n not in bound))
    for name in names:
        if name not in schema:
            raise RuleError(
                f"{where}: unknown name {name!r} at {_name_position(source, name)}; "
                f"known names: {', '.join(sorted(schema))}"
            )
    functions = [f for f in program.functions() if f[:1].isalpha() and f not in _KNOWN_FUNCTIONS]
    if functions:
        name = functions[0]
        raise RuleError(
            f"{where}: unknown function {name!r} at {_name_position(source, name, call=True)}; "
            f"known functions: {', '.join(sorted(_KNOWN_FUNCTIONS))}"
        )
    expression = Expression(source, key, program, names, result)
    try:
        value = program.execute({n: sample[n] for n in names})
    except (TypeError, RuntimeError) as exc:
        kinds = ", ".join(f"{n}: {schema[n].type}" for n in names)
        raise RuleError(f"{where}: type error: {_short_error(exc)} (types: {kinds})") from None
    except Exception:
        return expression
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if result == "bool" and not isinstance(value, bool):
        raise RuleError(f"{where}: a condition must give true or false, this gives {type_name(value)}")
    if result == "number" and value is not None and not isinstance(value, float):
        raise RuleError(f"{where}: must give a number, this gives {type_name(value)}")
    if result == "string" and value is not None and not isinstance(value, str):
        raise RuleError(f"{where}: must give a string, this gives {type_name(value)}")
    return expression


# The functions this CEL library defines; anything else would only fail at run time, so it fails the load.
_KNOWN_FUNCTIONS = frozenset(
    {
        "size", "has", "int", "uint", "double", "string", "type", "dyn", "contains", "startsWith",
        "endsWith", "matches", "timestamp", "duration", "all", "exists", "exists_one", "map", "filter",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
