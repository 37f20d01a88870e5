"""Usage sources without a CRM: the config section, domain keys, CSV and Parquet files, field matching.

Accounts are written straight into a temporary SQLite store; each test reads a file source into it
as ``sync`` would and checks what a user sees: features, match counts, one-line errors.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.errors import AuthError, ConfigError, ConnectorError
from crm_upsell_connector.models import Account, Stream
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.repo import upsert_records
from crm_upsell_connector.sync import SyncReport
from crm_upsell_connector.usage.config import UsageConfig
from crm_upsell_connector.usage.features import usage_features
from crm_upsell_connector.usage.keys import normalise_domain
from crm_upsell_connector.usage.matching import stored_match_report
from crm_upsell_connector.usage.preview import left_out, preview_source
from crm_upsell_connector.usage.stream import UsageSyncer

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
BASE: dict[str, Any] = {"connections": {"main": {"crm": "hubspot"}}}


def _accounts() -> list[Account]:
    stamp = NOW - timedelta(days=3)
    return [
        Account(id="101", name="Acme", domain="acme.com", updated_at=stamp, fields={"tenant": "T-1"}),
        Account(id="102", name="Globex", domain="www.Globex.io", updated_at=stamp, fields={"tenant": "T-2"}),
        Account(id="103", name="Initech", domain="initech.com", updated_at=stamp, fields={"tenant": "T-3"}),
        Account(id="104", name="Initech Labs", domain="initech.com", updated_at=stamp, fields={}),
        Account(id="105", name="Umbrella", domain=None, updated_at=stamp, fields={"tenant": "T-5"}),
    ]


@pytest.fixture
def store(store_url: str) -> Iterator[sa.Engine]:
    """A store holding five accounts, on SQLite and on PostgreSQL."""
    engine = open_store(store_url)
    with engine.begin() as conn:
        upsert_records(conn, "main", Stream.ACCOUNTS, _accounts())
    yield engine
    engine.dispose()


def _usage(sources: list[dict[str, Any]], base: Path) -> UsageConfig:
    config = parse_config({**BASE, "usage": {"sources": sources}}, str(base / "config.toml"))
    return config.usage


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _sync(store: sa.Engine, usage: UsageConfig, at: datetime = NOW) -> SyncReport:
    import asyncio

    report = SyncReport()
    syncer = UsageSyncer(store, usage, "main", SecretResolver({}), clock=lambda: at)
    asyncio.run(syncer.run(report))
    return report


# ---- config ------------------------------------------------------------------------------------


def test_usage_metrics_are_features_the_rules_can_use(tmp_path: Path) -> None:
    data = {
        **BASE,
        "usage": {
            "sources": [
                {
                    "name": "seats",
                    "path": "u.csv",
                    "key": "domain",
                    "metrics": {"seats_used": {"column": "s"}},
                }
            ]
        },
        "segments": {"utilization": "seats_used != null ? seats_used / 10.0 : null"},
        "guardrails": {"block": [{"name": "shrinking", "when": "seats_used_change_90d < -0.3"}]},
        "scoring": {"factors": [{"name": "growth", "expr": "seats_used_change_30d", "weight": 1}]},
    }
    config = parse_config(data, str(tmp_path / "config.toml"))
    assert config.usage.sources[0].path == str(tmp_path / "u.csv")
    assert {"seats_used", "seats_used_change_30d", "seats_used_change_90d"} <= set(
        config.rules.compiled.schema
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"url": "postgresql+psycopg://reader:hunter2@db/product", "query": "SELECT 1"},
            "url holds a password",
        ),
        (
            {"url": "postgresql+psycopg://reader@db/product", "query": "SELECT 1", "password": "hunter2"},
            "a secret must be a reference",
        ),
        (
            {"url": "sqlite:///x.db", "query": "SELECT * FROM u WHERE at >= :since"},
            "needs both ':since'",
        ),
        (
            {"url": "snowflake://reader@acct/db?authenticator=x&password=hunter2", "query": "SELECT 1"},
            "url carries 'password' in its query string",
        ),
        ({"url": "postgresql://u@h:port/db", "query": "SELECT 1"}, "url is not a SQLAlchemy URL"),
        ({"path": "usage.xlsx"}, "cannot tell the format"),
        ({"path": "u.csv", "url": "sqlite:///x.db", "query": "SELECT 1"}, "give either url and query"),
        ({"path": "u.csv", "match": "field"}, "crm_field is needed"),
        ({"path": "u.csv", "metrics": {"deals_won": {"column": "x"}}}, "already a built-in feature"),
        ({"path": "u.csv", "name": "Bad Name"}, "must be lower-case"),
        ({"path": "u.csv", "connections": ["nope"]}, "no connection named 'nope'"),
        ({"path": "u.csv", "colour": "red"}, "unknown key"),
    ],
)
def test_config_mistakes_are_one_line_with_the_key(source: dict[str, Any], message: str) -> None:
    entry = {"name": "src", "key": "k", "metrics": {"seats_used": {"column": "s"}}, **source}
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "usage": {"sources": [entry]}}, "config.toml")
    text = caught.value.one_line()
    assert message in text and "\n" not in text and "hunter2" not in text
    assert text.startswith("config.toml:")


def test_a_usage_metric_may_not_take_a_name_the_engine_sets() -> None:
    data = {
        **BASE,
        "usage": {
            "sources": [{"name": "s", "path": "u.csv", "key": "k", "metrics": {"score": {"column": "n"}}}]
        },
    }
    with pytest.raises(ConfigError, match="'score' is a name the engine sets"):
        parse_config(data, "config.toml")


def test_a_usage_metric_may_not_shadow_a_mapped_field() -> None:
    data = {
        **BASE,
        "usage": {
            "sources": [{"name": "s", "path": "u.csv", "key": "k", "metrics": {"nps": {"column": "n"}}}]
        },
        "features": {"fields": {"nps": {"field": "nps_score", "type": "number"}}},
    }
    with pytest.raises(ConfigError, match="'nps' is also a usage metric"):
        parse_config(data, "config.toml")


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://WWW.Acme.com:443/login?x=1", "acme.com"),
        ("ops@acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("localhost", None),
        ("   ", None),
    ],
)
def test_domains_are_normalised(raw: str, domain: str | None) -> None:
    assert normalise_domain(raw) == domain


# ---- files -------------------------------------------------------------------------------------


def test_csv_by_domain_reports_unmatched_and_ambiguous(store: sa.Engine, tmp_path: Path) -> None:
    _write_csv(
        tmp_path / "usage.csv",
        [
            ["Domain", "Seats", "Events"],
            ["ACME.com", "12", "1,200"],
            ["https://globex.io/app", "4", ""],
            ["initech.com", "9", "5"],  # two accounts share this domain
            ["unknown.example", "1", "1"],
            ["", "3", "3"],  # no key
        ],
    )
    usage = _usage(
        [
            {
                "name": "product",
                "path": "usage.csv",
                "key": "Domain",
                "metrics": {"seats_used": {"column": "Seats"}, "events": {"column": "Events"}},
            }
        ],
        tmp_path,
    )
    report = _sync(store, usage)
    assert not report.failed and report.streams["usage:product"].records == 4
    matches = report.usage["product"]
    assert (matches["matched"], matches["unmatched"], matches["ambiguous"]) == (2, 1, 1)
    assert matches["accounts_without_usage"] == 3
    assert "2 of 4 keys matched (50%), 1 unmatched, 1 ambiguous" in matches["line"]
    with store.connect() as conn:
        features = usage_features(conn, "main", NOW, usage)
        found = left_out(conn, "main", usage.sources[0])
    assert features["101"]["seats_used"] == 12.0 and features["101"]["events"] == 1200.0
    assert features["102"]["events"] is None
    assert "103" not in features and "104" not in features
    assert found.unmatched_keys == ["unknown.example"]
    assert found.ambiguous_keys == ["initech.com (2 accounts)"]
    assert [a for a, _ in found.accounts_without_usage] == ["103", "104", "105"]


def test_parquet_by_external_id_field_with_history(store: sa.Engine, tmp_path: Path) -> None:
    days = [(NOW - timedelta(days=n)).date() for n in (100, 40, 0)]
    table = pa.table(
        {
            "tenant_id": ["T-1", "T-1", "T-1", "T-2", "T-9"],
            "day": [days[0], days[1], days[2], days[2], days[2]],
            "active_users": [10, 20, 25, 3, 1],
        }
    )
    pq.write_table(table, tmp_path / "usage.parquet")
    usage = _usage(
        [
            {
                "name": "warehouse",
                "path": "usage.parquet",
                "key": "tenant_id",
                "match": "field",
                "crm_field": "tenant",
                "date_column": "day",
                "chunk_rows": 100,
                "metrics": {"active_users": {"column": "active_users"}},
            }
        ],
        tmp_path,
    )
    assert usage.crm_fields() == ("tenant",)
    report = _sync(store, usage)
    assert report.usage["warehouse"]["matched"] == 2 and report.usage["warehouse"]["unmatched"] == 1
    with store.connect() as conn:
        features = usage_features(conn, "main", NOW, usage)
    acme = features["101"]
    assert acme["active_users"] == 25.0
    assert acme["active_users_change_30d"] == pytest.approx(0.25)  # 20 -> 25
    assert acme["active_users_change_90d"] == pytest.approx(1.5)  # 10 -> 25
    assert features["102"]["active_users_change_90d"] is None  # no value that old


def test_reading_the_same_file_again_stores_nothing_new(store: sa.Engine, tmp_path: Path) -> None:
    _write_csv(tmp_path / "u.csv", [["id", "seats"], ["101", "5"], ["102", "6"]])
    usage = _usage(
        [
            {
                "name": "u",
                "path": "u.csv",
                "key": "id",
                "match": "id",
                "metrics": {"seats_used": {"column": "seats"}},
            }
        ],
        tmp_path,
    )
    assert _sync(store, usage).streams["usage:u"].records == 2
    assert _sync(store, usage, NOW + timedelta(days=1)).streams["usage:u"].records == 0
    _write_csv(tmp_path / "u.csv", [["id", "seats"], ["101", "7"], ["102", "6"]])
    assert _sync(store, usage, NOW + timedelta(days=40)).streams["usage:u"].records == 1
    with store.connect() as conn:
        features = usage_features(conn, "main", NOW + timedelta(days=40), usage)
    assert features["101"]["seats_used_change_30d"] == pytest.approx(0.4)  # 5 -> 7
    assert features["102"]["seats_used_change_30d"] == 0.0  # carried forward unchanged


def test_a_missing_column_or_file_fails_that_source_only(store: sa.Engine, tmp_path: Path) -> None:
    _write_csv(tmp_path / "good.csv", [["id", "seats"], ["101", "5"]])
    _write_csv(tmp_path / "bad.csv", [["id", "seat_count"], ["101", "5"]])
    usage = _usage(
        [
            {
                "name": "bad",
                "path": "bad.csv",
                "key": "id",
                "match": "id",
                "metrics": {"a": {"column": "seats"}},
            },
            {
                "name": "gone",
                "path": "gone.csv",
                "key": "id",
                "match": "id",
                "metrics": {"b": {"column": "x"}},
            },
            {
                "name": "good",
                "path": "good.csv",
                "key": "id",
                "match": "id",
                "metrics": {"c": {"column": "seats"}},
            },
        ],
        tmp_path,
    )
    report = _sync(store, usage)
    assert list(report.streams) == ["usage:good"]
    assert report.failed["usage:bad"].startswith("usage source 'bad': no column 'seats'")
    assert "its columns: id, seat_count" in report.failed["usage:bad"]
    assert report.failed["usage:gone"].startswith("usage source 'gone': no file at")


def test_a_missing_password_secret_fails_that_source_only(store: sa.Engine, tmp_path: Path) -> None:
    source = {
        "name": "db",
        "url": f"sqlite:///{tmp_path / 'product.db'}",
        "password": "env:PRODUCT_DB_PASSWORD",
        "query": "SELECT 1 AS k, 2 AS v",
        "key": "k",
        "match": "id",
        "metrics": {"v": {"column": "v"}},
    }
    usage = _usage([source], tmp_path)
    report = _sync(store, usage)
    assert "PRODUCT_DB_PASSWORD is not set" in report.failed["usage:db"]
    with pytest.raises(AuthError):
        preview_source(store, "main", usage.sources[0], SecretResolver({}))


def test_sqlite_query_in_chunks_and_preview(store: sa.Engine, tmp_path: Path) -> None:
    product = sa.create_engine(f"sqlite:///{tmp_path / 'product.db'}")
    with product.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts_usage (crm_id TEXT, seats INTEGER, plan TEXT)"))
        conn.execute(
            sa.text("INSERT INTO accounts_usage VALUES (:i, :s, 'pro')"),
            [{"i": str(100 + n), "s": n} for n in range(1, 251)],
        )
    product.dispose()
    usage = _usage(
        [
            {
                "name": "product",
                "url": f"sqlite:///{tmp_path / 'product.db'}",
                "query": "SELECT crm_id, seats, plan FROM accounts_usage",
                "key": "crm_id",
                "match": "id",
                "chunk_rows": 100,
                "metrics": {"seats_used": {"column": "seats"}},
            }
        ],
        tmp_path,
    )
    shown = preview_source(store, "main", usage.sources[0], SecretResolver({}))
    assert shown.columns == ["crm_id", "seats", "plan"] and shown.rows == 250
    assert shown.matches.matched == 5 and shown.matches.unmatched == 245
    assert shown.to_json()["match_rate"] == 0.02 and len(shown.sample) == 5
    report = _sync(store, usage)
    assert report.streams["usage:product"].pages == 3  # 250 rows, 100 at a time
    with store.connect() as conn:
        assert stored_match_report(conn, "main", usage.sources[0]).accounts_without_usage == 0


def test_connector_errors_name_the_source(tmp_path: Path) -> None:
    from crm_upsell_connector.usage.readers import SourceReader, UsageSourceError

    usage = _usage(
        [
            {
                "name": "dw",
                "url": "nosuchdialect://host/db",
                "query": "SELECT 1",
                "key": "k",
                "metrics": {"m": {"column": "m"}},
            }
        ],
        tmp_path,
    )
    with pytest.raises(ConfigError, match="no SQLAlchemy dialect for 'nosuchdialect'"):
        list(SourceReader(usage.sources[0], SecretResolver({})).chunks())
    assert issubclass(UsageSourceError, ConnectorError)


def test_a_key_gone_from_a_full_read_has_no_usage_and_an_empty_file_changes_nothing(
    store: sa.Engine, tmp_path: Path
) -> None:
    _write_csv(tmp_path / "u.csv", [["id", "seats"], ["101", "5"], ["102", "6"]])
    usage = _usage(
        [
            {
                "name": "u",
                "path": "u.csv",
                "key": "id",
                "match": "id",
                "metrics": {"seats_used": {"column": "seats"}},
            }
        ],
        tmp_path,
    )
    _sync(store, usage)
    _write_csv(tmp_path / "u.csv", [["id", "seats"], ["101", "5"]])
    later = NOW + timedelta(days=2)
    report = _sync(store, usage, later)
    assert report.streams["usage:u"].deleted == 1
    with store.connect() as conn:
        features = usage_features(conn, "main", later, usage)
        assert features["102"]["seats_used"] is None and features["101"]["seats_used"] == 5.0
        # Looking back, the value it had then is still there.
        assert usage_features(conn, "main", NOW, usage)["102"]["seats_used"] == 6.0
    _write_csv(tmp_path / "u.csv", [["id", "seats"]])
    report = _sync(store, usage, later + timedelta(days=1))
    assert "usage source 'u': returned no rows with a key (of 0 read)" in report.failed["usage:u"]
    with store.connect() as conn:
        assert usage_features(conn, "main", later + timedelta(days=1), usage)["101"]["seats_used"] == 5.0


def test_parquet_without_pyarrow_says_which_extra_to_install(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq.write_table(pa.table({"id": ["101"], "seats": [3]}), tmp_path / "u.parquet")
    usage = _usage(
        [
            {
                "name": "u",
                "path": "u.parquet",
                "key": "id",
                "match": "id",
                "metrics": {"s": {"column": "seats"}},
            }
        ],
        tmp_path,
    )
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    report = _sync(store, usage)
    assert "reading Parquet needs pyarrow" in report.failed["usage:u"]
    assert "crm-upsell-connector[parquet]" in report.failed["usage:u"]


def test_a_salesforce_id_matches_in_its_15_character_form(tmp_path: Path) -> None:
    from crm_upsell_connector.usage.keys import id_aliases

    assert id_aliases("00558000001N0KeAAK") == ("00558000001N0Ke",)
    assert id_aliases("4876876000000123456") == ()  # a Zoho id
    assert id_aliases("00558000001N0KeAAA") == ()  # not the suffix of its first fifteen
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    stamp = NOW - timedelta(days=1)
    with engine.begin() as conn:
        upsert_records(conn, "main", Stream.ACCOUNTS, [Account(id="00558000001N0KeAAK", updated_at=stamp)])
    _write_csv(tmp_path / "u.csv", [["id", "seats"], ["00558000001N0Ke", "4"]])
    usage = _usage(
        [
            {
                "name": "u",
                "path": "u.csv",
                "key": "id",
                "match": "id",
                "metrics": {"seats_used": {"column": "seats"}},
            }
        ],
        tmp_path,
    )
    assert _sync(engine, usage).usage["u"]["matched"] == 1
    with engine.connect() as conn:
        assert usage_features(conn, "main", NOW, usage)["00558000001N0KeAAK"]["seats_used"] == 4.0
    engine.dispose()
