"""Bad config input: every mutated, truncated or garbled config.toml gives a valid Config or one
clear ConfigError line naming the file (and the key's dotted path); never another exception."""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import Config, load_config, parse_config
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.init import example_text

EXAMPLE = tomllib.loads(example_text())
SOURCE = "/etc/crm-upsell/設定 config.toml"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Path_ = tuple[str | int, ...]

# ---- the document as paths ----------------------------------------------------------------------


def walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) below the root, parents before children."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index), value
            yield from walk(value, (*path, index))


ALL_PATHS: list[Path_] = [p for p, _ in walk(EXAMPLE)]
TABLE_PATHS: list[Path_] = [(), *(p for p, v in walk(EXAMPLE) if isinstance(v, dict))]
EXPRESSION_KEYS = frozenset({"expr", "when", "quantity", "utilization"})
EXPRESSION_PATHS: list[Path_] = [
    p
    for p, v in walk(EXAMPLE)
    if isinstance(v, str) and (p[-1] in EXPRESSION_KEYS or p[:2] == ("segments", "tags"))
]
TEMPLATE_PATHS: list[Path_] = [
    ("tasks", "subject"),
    ("tasks", "body"),
    *(p for p in ALL_PATHS if p[-1] == "reason" and p[0] in ("upgrades", "cross_sell", "retention")),
]
# Tables whose keys are fixed by a model (an unknown key there is an error at a known path); the
# others are free maps (connection names, settings, feature and tag names).
FREE_MAPS = {
    ("connections",),
    ("connections", "main", "settings"),
    ("features", "fields"),
    ("features", "derived"),
    ("segments", "tags"),
}
STRICT_TABLES: list[Path_] = [p for p in TABLE_PATHS if p not in FREE_MAPS]


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


# ---- junk ---------------------------------------------------------------------------------------

JAPANESE = st.sampled_from(["株式会社テスト", "クレーム", "設定", "ｶﾀｶﾅ", "全角　スペース", "𠮷野家"])
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    JAPANESE,
    st.just(""),
    st.just(" "),
    st.just("x" * 100_000),
    st.just("line one\nline two"),
    st.just("pat-na1-0123abcd-4567-89ef-0123-456789abcdef"),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.just(10**400),
    st.just(-1),
    st.just(0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
)
SCALARS = st.one_of(ODD_TEXT, NUMBERS, st.booleans(), st.sampled_from(["maybe", "30", "1e3", "NaN"]))
JUNK = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
    st.just([{"a": 1}]),
    st.just({}),
    st.just([]),
)
BROKEN_CEL = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "   ",
            "no_such_feature > 1.0",
            "score > 'high'",
            "account_name + 1.0",
            "score + 1",
            "tenure_days > 3",
            "seats_purchased.foo",
            "size(score)",
            "1.0 / 0.0",
            "nosuchfn(score)",
            "score >",
            "((((score)",
            "株式会社テスト == account_name",
            "account_name == '株式会社テスト'",
            "'x' * 3",
            "owned_tiers['crm'] + 'a'",
            "tags",
            "score",
            "true && ",
            "score > 1.0\n&&",
            "\x00",
            "a" * 10_000,
            "(" * 300 + "score" + ")" * 300,
        ]
    ),
)
BROKEN_TEMPLATE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["$", "cost: 5$", "$no_such_placeholder", "${account_name", "$$ and $account_name", "${}"]
    ),
)
PASTED_SECRETS = st.sampled_from(
    [
        "pat-na1-0123abcd-4567-89ef-0123-456789abcdef",
        "keyring:",
        "keyring:has space",
        "env:",
        "vault:foo",
        "Bearer abc.def.ghi",
        "keyring:" + "x" * 65,
        "keyring:トークン",
    ]
)
KEY_NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
    JAPANESE,
    st.text(min_size=1, max_size=12),
)


# ---- mutations ----------------------------------------------------------------------------------


@st.composite
def mutation(draw: st.DrawFn, doc: dict[str, Any]) -> str:
    """Apply one random mutation to ``doc`` in place; returns a description for the failure report."""
    kind = draw(st.sampled_from(["delete", "unknown", "replace", "cel", "template", "secret", "empty_table"]))
    if kind == "delete":
        paths = [p for p, _ in walk(doc)]
        if not paths:
            return "nothing to delete"
        path = draw(st.sampled_from(paths))
        parent = get(doc, path[:-1])
        del parent[path[-1]]
        return f"delete {dotted(path)}"
    if kind == "unknown":
        tables = [(), *(p for p, v in walk(doc) if isinstance(v, dict))]
        path = draw(st.sampled_from(tables))
        key = "unknown_" + draw(KEY_NAMES)
        get(doc, path)[key] = copy.deepcopy(draw(JUNK))
        return f"add {dotted((*path, key))}"
    if kind == "replace":
        paths = [p for p, _ in walk(doc)]
        if not paths:
            return "nothing to replace"
        path = draw(st.sampled_from(paths))
        get(doc, path[:-1])[path[-1]] = copy.deepcopy(draw(JUNK))
        return f"replace {dotted(path)}"
    if kind in ("cel", "template"):
        candidates = EXPRESSION_PATHS if kind == "cel" else TEMPLATE_PATHS
        paths = [p for p in candidates if _exists(doc, p)]
        if not paths:
            return f"no {kind} left"
        path = draw(st.sampled_from(paths))
        get(doc, path[:-1])[path[-1]] = draw(BROKEN_CEL if kind == "cel" else BROKEN_TEMPLATE)
        return f"{kind} {dotted(path)}"
    if kind == "secret":
        try:
            settings_ = doc["connections"]["main"]["settings"]
        except (KeyError, IndexError, TypeError):
            settings_ = None
        if not isinstance(settings_, dict):
            return "no settings"
        key = draw(st.sampled_from(["token", "client_secret", "refresh_token"]))
        settings_[key] = draw(PASTED_SECRETS)
        return f"secret connections.main.settings.{key}"
    section = draw(st.sampled_from(sorted(doc) or ["connections"]))
    doc[section] = copy.deepcopy(draw(st.sampled_from([{}, [], "", [{}]])))
    return f"empty {section}"


def _exists(doc: Any, path: Path_) -> bool:
    try:
        get(doc, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def check_error(exc: ConfigError, source: str) -> str:
    message = exc.message
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert source in message, message
    assert "Traceback" not in message
    assert "\n" not in exc.one_line()
    return message


def parse_or_error(doc: dict[str, Any], source: str = SOURCE) -> Config | ConfigError:
    try:
        return parse_config(doc, source)
    except ConfigError as exc:
        check_error(exc, source)
        return exc


# ---- properties on parsed documents -------------------------------------------------------------


def test_the_example_is_valid() -> None:
    assert isinstance(parse_config(copy.deepcopy(EXAMPLE), SOURCE), Config)


@FUZZ
@given(data=st.data())
def test_mutated_documents_give_a_config_or_one_clear_line(data: st.DataObject) -> None:
    doc = copy.deepcopy(EXAMPLE)
    steps = [data.draw(mutation(doc)) for _ in range(data.draw(st.integers(1, 4)))]
    note(steps)
    parse_or_error(doc)


@FUZZ
@given(data=st.data())
@example(data=None)  # the root itself, checked without drawing
def test_an_unknown_key_names_its_dotted_path(data: st.DataObject | None) -> None:
    doc = copy.deepcopy(EXAMPLE)
    if data is None:
        path: Path_ = ()
        key = "unknown_key"
    else:
        path = data.draw(st.sampled_from(STRICT_TABLES))
        key = "unknown_" + data.draw(st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True))
    get(doc, path)[key] = 1
    result = parse_or_error(doc)
    assert isinstance(result, ConfigError)
    assert f"{dotted((*path, key))}: unknown key" in result.message, result.message


@FUZZ
@given(path=st.sampled_from(EXPRESSION_PATHS), expr=BROKEN_CEL)
def test_broken_expressions_name_the_expression_key(path: Path_, expr: str) -> None:
    doc = copy.deepcopy(EXAMPLE)
    get(doc, path[:-1])[path[-1]] = expr
    result = parse_or_error(doc)
    if isinstance(result, ConfigError):
        # the expression's own key, or a key that uses what it defines (a derived feature's type)
        assert dotted(path) in result.message or "features.derived" in dotted(path), result.message


@FUZZ
@given(path=st.sampled_from(ALL_PATHS), value=JUNK)
def test_a_wrong_value_is_rejected_at_its_key_or_accepted(path: Path_, value: Any) -> None:
    doc = copy.deepcopy(EXAMPLE)
    get(doc, path[:-1])[path[-1]] = value
    result = parse_or_error(doc)
    if isinstance(result, ConfigError) and path[0] in ("store", "sync", "http"):
        assert dotted(path) in result.message, result.message


@FUZZ
@given(key=st.sampled_from(["token", "client_secret", "refresh_token"]), secret=PASTED_SECRETS)
def test_a_pasted_secret_never_passes_the_settings_check(key: str, secret: str) -> None:
    from crm_upsell_hubspot.settings import HubSpotSettings
    from pydantic import ValidationError

    from crm_upsell_connector.config import format_validation_error

    doc = copy.deepcopy(EXAMPLE)
    doc["connections"]["main"]["settings"][key] = secret
    config = parse_config(doc, SOURCE)  # settings are the connector's to check
    with pytest.raises(ValidationError) as info:
        HubSpotSettings.model_validate(config.connections["main"].settings)
    line = format_validation_error(SOURCE, info.value, ("connections", "main", "settings"))
    assert "\n" not in line
    assert f"connections.main.settings.{key}" in line


# ---- files: TOML text, byte soup, invalid UTF-8 --------------------------------------------------


def toml_string(value: str) -> str:
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise OverflowError("TOML integers are 64-bit")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level keys with inline values: enough TOML to carry any mutated document."""
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in doc.items())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


def load_or_error(path: Path) -> Config | ConfigError:
    try:
        return load_config(path)
    except ConfigError as exc:
        check_error(exc, str(path))
        return exc


def test_the_serialiser_round_trips_the_example(files: Path) -> None:
    path = files / "roundtrip.toml"
    path.write_text(to_toml(EXAMPLE), encoding="utf-8")
    assert tomllib.loads(path.read_text(encoding="utf-8")) == EXAMPLE
    assert isinstance(load_config(path), Config)


@settings(FUZZ, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_load_or_fail_with_one_line(files: Path, data: st.DataObject) -> None:
    doc = copy.deepcopy(EXAMPLE)
    for _ in range(data.draw(st.integers(1, 3))):
        note(data.draw(mutation(doc)))
    try:
        text = to_toml(doc)
    except OverflowError:
        assume(False)
    path = files / "mutated.toml"
    path.write_text(text, encoding="utf-8")
    load_or_error(path)


EXAMPLE_BYTES = example_text().encode("utf-8")


@st.composite
def garbled(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["soup", "truncate", "splice", "invalid_utf8", "bom", "nul"]))
    if kind == "soup":
        return draw(st.binary(max_size=400))
    if kind == "truncate":
        return EXAMPLE_BYTES[: draw(st.integers(0, len(EXAMPLE_BYTES)))]
    if kind == "splice":
        at = draw(st.integers(0, len(EXAMPLE_BYTES)))
        return EXAMPLE_BYTES[:at] + draw(st.binary(min_size=1, max_size=20)) + EXAMPLE_BYTES[at:]
    if kind == "invalid_utf8":
        at = draw(st.integers(0, len(EXAMPLE_BYTES)))
        return EXAMPLE_BYTES[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xe3\x81", b"\xed\xa0\x80"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + EXAMPLE_BYTES
    return EXAMPLE_BYTES.replace(b"[sync]", b"[sync]\x00", 1)


@settings(FUZZ, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=garbled())
def test_garbled_files_load_or_fail_with_one_line(files: Path, content: bytes) -> None:
    path = files / "garbled.toml"
    path.write_bytes(content)
    load_or_error(path)


def test_missing_file_and_directory(files: Path) -> None:
    for path in (files / "does-not-exist.toml", files):
        result = load_or_error(path)
        assert isinstance(result, ConfigError)


# ---- the CLI -------------------------------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[str, str]] = {
    "wrong type": ("timeout_s = 30.0", 'timeout_s = "fast"'),
    "unknown key": ("parallel_streams = 4", "parallel_streams = 4\nparalel_streams = 4"),
    "invalid toml": ("[sync]", "[sync"),
    "broken cel": ('high_loyalty = "score >= 70.0"', 'high_loyalty = "score >= "'),
    "unknown name": ('low_loyalty = "score < 40.0"', 'low_loyalty = "scor < 40.0"'),
    "type mismatch": ('low_loyalty = "score < 40.0"', 'low_loyalty = "account_name < 40.0"'),
    "japanese connection": ("[connections.main]", "[connections.本番]"),
    "huge number": ("max_attempts = 8", "max_attempts = 99999999999999999"),
    "nan": ("backoff_max_s = 60.0", "backoff_max_s = nan"),
    "lone dollar": ('subject = "$kind_label', 'subject = "$ $kind_label'),
    "pasted secret": ('token = "keyring:hubspot-token"', 'token = "pat-na1-0123abcd-4567-89ef"'),
    "no connection": ('crm = "hubspot"', 'crm = "no-such-crm"'),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_cli_check_says_one_error_line_and_exits_2(
    name: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = BAD_CONFIGS[name]
    text = example_text()
    assert old in text
    store = files / f"store-{len(name)}.sqlite3"
    text = text.replace(old, new, 1).replace(
        "[store]", f"[store]\nurl = {toml_string(f'sqlite:///{store}')}", 1
    )
    path = files / "cli.toml"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["--config", str(path), "check"])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err


# ---- what the fuzzing found, pinned -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [(), ("sync",), ("scoring", "factors", 0), ("connections",), ("segments", "tags")]
)
def test_a_key_with_a_line_break_stays_on_one_line(path: Path_) -> None:
    doc = copy.deepcopy(EXAMPLE)
    get(doc, path)["bad\nkey\r"] = 1
    result = parse_or_error(doc)
    assert isinstance(result, ConfigError)
    assert "'bad\\nkey\\r'" in result.message


def test_a_sku_with_a_line_break_stays_on_one_line() -> None:
    doc = copy.deepcopy(EXAMPLE)
    doc["products"][5]["sku"] = "line one\nline two"
    result = parse_or_error(doc)
    assert isinstance(result, ConfigError)
