"""Usage sources end to end: a PostgreSQL table and a CSV file feed seat use for the sandbox's accounts.

The HubSpot sandbox serves the accounts (its companies carry no seat-use field here: the example's
``seats_active`` mapping is dropped), a table in a temporary PostgreSQL database holds seats in
use by domain, and a CSV file holds logins by CRM id with two days of history. The matrix in
``score`` then fills from the usage; unmatched and ambiguous keys are reported; a broken query
fails its own stream only.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from crm_upsell_connector.cli import main, output
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.init import example_text
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.schema import accounts, usage_values
from crm_upsell_connector.usage.features import usage_provenance

pytestmark = pytest.mark.postgres

ACCOUNTS = 60
TOKEN_ENV = "CRM_UPSELL_TEST_USAGE_HUBSPOT_TOKEN"
UNKNOWN = ("nobody-1.example.org", "nobody-2.example.org", "nobody-3.example.org")
USAGE_SEATS = "seats_in_use != null && seats_purchased != null && seats_purchased > 0.0"
SEAT_UTILIZATION = f"{USAGE_SEATS} ? seats_in_use / seats_purchased : null"


@dataclasses.dataclass
class World:
    scenario: Scenario
    base_url: str
    options: SandboxOptions
    usage_url: str  # the product database (PostgreSQL)
    tmp: Path

    @property
    def today(self) -> datetime:
        return self.scenario.now


def _scenario() -> Scenario:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = build_scenario(accounts=ACCOUNTS, seed=11, now=today)
    # A second company with the first one's domain: that domain must not be guessed.
    first = scenario.companies[0]
    scenario.companies.append(
        dataclasses.replace(first, key=first.key + "-twin", name=first.name + " (twin)")
    )
    return scenario


def _fill_product_db(url: str, scenario: Scenario) -> None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "CREATE TABLE workspace_usage (account_domain text, seats_in_use integer, "
            "updated_at timestamptz NOT NULL)"
        )
        stamp = scenario.now - timedelta(days=1)
        rows: list[tuple[Any, ...]] = []
        for i, company in enumerate(scenario.companies):
            if company.seats_active is None:
                continue
            # Domains as product databases hold them: some with www., a scheme or upper case.
            domain = company.domain
            domain = (f"https://www.{domain}/", domain.upper(), f"www.{domain}", domain)[i % 4]
            rows.append((domain, company.seats_active, stamp))
        rows += [(d, 5, stamp) for d in UNKNOWN]
        with db.cursor() as cur:
            cur.executemany("INSERT INTO workspace_usage VALUES (%s, %s, %s)", rows)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tests.conftest import _temporary_database

    tmp = tmp_path_factory.mktemp("usage")
    scenario = _scenario()
    options = SandboxOptions(accounts=ACCOUNTS, seed=11, search_rate_limit_max=100)
    plugin = load_plugins()["hubspot"]
    with _temporary_database() as usage_url, SandboxServer(plugin.sandbox_app(scenario, options)) as base_url:
        _fill_product_db(usage_url, scenario)
        yield World(scenario, base_url, options, usage_url, tmp)


def _config(world: World, store: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
    plugin = load_plugins()["hubspot"]
    data = sandbox_config(plugin, world.base_url, world.options, store)
    # This CRM keeps no seat use: only what the usage sources say fills the utilization axis.
    del data["features"]["fields"]["seats_active"]
    derived = data["features"]["derived"]
    # (without a usage source nothing measures seat use: the expression is always null)
    expr = SEAT_UTILIZATION if sources else "seats_purchased != null && seats_purchased < 0.0 ? 1.0 : null"
    derived["seat_utilization"] = {"expr": expr, "description": "seats in use (product DB)"}
    for rule in data["upgrades"] + data["retention"]:
        if "reason" in rule:
            rule["reason"] = rule["reason"].replace("$seats_active", "$seats_in_use" if sources else "")
    data["usage"] = {"sources": sources}
    return data


def _product_db(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "name": "product_db",
        "url": world.usage_url,
        "password": "env:USAGE_DB_PASSWORD",
        "query": "SELECT account_domain, seats_in_use, updated_at FROM workspace_usage "
        "WHERE updated_at >= :since",
        "cursor_column": "updated_at",
        "key": "account_domain",
        "match": "domain",
        "metrics": {"seats_in_use": {"column": "seats_in_use"}},
        **extra,
    }


def _session(world: World, data: dict[str, Any]) -> Session:
    plugin = load_plugins()["hubspot"]
    environ = {**plugin.sandbox_secrets(world.options), "USAGE_DB_PASSWORD": "not-needed-by-trust-auth"}
    session = Session.open(
        parse_config(data, str(world.tmp / "config.toml")), "demo", secrets=SecretResolver(environ)
    )
    session.clock = lambda: world.today
    return session


def _write_logins(path: Path, ids: list[str], today: datetime) -> None:
    """Logins by CRM id: 90 days ago and today (up 30%), plus a row for an id the CRM does not have."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["crm_id", "day", "logins", "notes"])
        old, new = (today - timedelta(days=90)).date(), today.date()
        for account_id in ids:
            out.writerow([account_id, old.isoformat(), "100", "x"])
            out.writerow([account_id, new.isoformat(), "130", "y"])
        out.writerow(["999999999999", new.isoformat(), "7", "unknown id"])


async def test_usage_from_postgresql_and_csv_fills_the_matrix(world: World) -> None:
    store = f"sqlite:///{world.tmp / 'store.sqlite3'}"
    logins = world.tmp / "logins.csv"
    sources = [
        _product_db(world),
        {
            "name": "analytics",
            "path": "logins.csv",  # relative to the config file
            "key": "crm_id",
            "match": "id",
            "date_column": "day",
            "metrics": {"logins": {"column": "logins", "description": "logins a day"}},
        },
    ]
    # Without usage: no seat use in the CRM, so no account is on the utilization axis.
    bare = _session(world, _config(world, store, []))
    async with bare.connector() as connector:
        await bare.sync(connector)
    assert {r.segment for r in bare.score()} == {"unmeasured"}
    with bare.engine.connect() as conn:
        ids = sorted(conn.execute(sa.select(accounts.c.id)).scalars())
    bare.engine.dispose()
    _write_logins(logins, ids[: len(ids) // 2], world.today)

    session = _session(world, _config(world, store, sources))
    async with session.connector() as connector:
        report = await session.sync(connector)
    assert not report.failed
    assert report.streams["usage:product_db"].records > 0
    seats = report.usage["product_db"]
    with_seats = [c for c in world.scenario.companies if c.seats_active is not None]
    # The twin's domain is shared by two accounts: reported as ambiguous, matched to neither.
    assert seats["ambiguous"] == 1
    assert seats["unmatched"] == len(UNKNOWN)
    assert seats["matched"] == len({c.domain for c in with_seats}) - 1
    assert seats["accounts_without_usage"] == len(world.scenario.companies) - seats["matched"]
    assert report.usage["analytics"]["matched"] == len(ids) // 2
    assert report.usage["analytics"]["unmatched"] == 1

    recs = {r.account_id: r for r in session.score()}
    measured = [r for r in recs.values() if r.segment != "unmeasured"]
    assert len(measured) >= seats["matched"] * 0.8  # an account without seats purchased stays unmeasured
    with session.engine.connect() as conn:
        domain_of = {i: d for i, d in conn.execute(sa.select(accounts.c.id, accounts.c.domain))}
    twins = [i for i, d in domain_of.items() if d == world.scenario.companies[0].domain]
    assert len(twins) == 2 and all(recs[t].segment == "unmeasured" for t in twins)
    # Trends from the CSV's history: 100 logins 90 days ago, 130 today.
    from crm_upsell_connector.features import compute_features
    from crm_upsell_connector.usage.features import attach_usage

    with session.engine.connect() as conn:
        rows = attach_usage(
            conn,
            "demo",
            world.today,
            session.config.usage,
            compute_features(conn, "demo", world.today, session.rules.features, session.rules.products),
        )
        features = {f["account_id"]: f for f in rows}
        first = ids[0]
        assert features[first]["logins"] == 130.0
        assert features[first]["logins_change_90d"] == pytest.approx(0.3)
        # 30 days ago the value of 90 days ago was still in force: it carries forward.
        assert features[first]["logins_change_30d"] == pytest.approx(0.3)
        assert features[ids[-1]]["logins"] is None
        # explain names the source of each usage value.
        notes = usage_provenance(conn, "demo", first, world.today, session.config.usage)
    assert "usage source analytics" in notes["logins"] and "key" in notes["logins"]
    assert notes["logins_change_90d"].endswith(f"value of {(world.today - timedelta(days=90)).date()}")
    session.engine.dispose()


async def test_incremental_reads_and_unchanged_values_carry_forward(world: World, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    session = _session(world, _config(world, store, [_product_db(world)]))
    syncer = session.usage_syncer()
    source = session.config.usage.sources[0]
    first = syncer.sync_source(source)
    # The twin company's row repeats its domain: one value per key and day is kept.
    assert first.mode == "full" and first.duplicates == 1
    assert first.stored == first.rows - first.duplicates > 0
    # The next day nothing changed: the query returns nothing, the values carry forward.
    session.clock = lambda: world.today + timedelta(days=1)
    again = session.usage_syncer().sync_source(source)
    assert again.mode == "incremental" and again.stored == 0 and again.rows == 0
    dsn = world.usage_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "UPDATE workspace_usage SET seats_in_use = 999, updated_at = %s WHERE account_domain = %s",
            (world.today + timedelta(hours=2), UNKNOWN[0]),
        )
    try:
        session.clock = lambda: world.today + timedelta(days=2)
        changed = session.usage_syncer().sync_source(source)
        assert changed.mode == "incremental" and changed.rows == 1 and changed.stored == 1
        with session.engine.connect() as conn:
            history = conn.execute(
                sa.select(usage_values.c.observed_on, usage_values.c.metrics)
                .where(usage_values.c.key == UNKNOWN[0])
                .order_by(usage_values.c.observed_on)
            ).all()
        assert [h.metrics["seats_in_use"] for h in history] == [5.0, 999.0]
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(
                "UPDATE workspace_usage SET seats_in_use = 5, updated_at = %s WHERE account_domain = %s",
                (world.today - timedelta(days=1), UNKNOWN[0]),
            )
        session.engine.dispose()


async def test_a_broken_query_fails_its_own_stream_only(world: World, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    broken = {
        "name": "warehouse",
        "url": world.usage_url,
        "query": "SELECT domain, seats FROM no_such_table",
        "key": "domain",
        "metrics": {"seats_in_use": {"column": "seats"}},
    }
    session = _session(world, _config(world, store, [broken]))
    async with session.connector() as connector:
        report = await session.run_pipeline(connector, dry_run=True)
    assert report.status == "partial"
    failed = report.summary["failed_streams"]
    assert list(failed) == ["usage:warehouse"]
    assert "usage source 'warehouse': the query failed" in failed["usage:warehouse"]
    assert "no_such_table" in failed["usage:warehouse"]
    # Every CRM stream was read and committed.
    with session.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == ACCOUNTS + 1
    session.engine.dispose()


def _cli_config(world: World, path: Path, store: Path) -> None:
    """The example config against the sandbox, with seat use from a CSV instead of the CRM field."""
    text = example_text().replace(
        'token = "keyring:hubspot-token"', f'token = "env:{TOKEN_ENV}"\nbase_url = "{world.base_url}"'
    )
    text = text.replace('# url = "sqlite:////var/lib/crm-upsell/store.sqlite3"', f'url = "sqlite:///{store}"')
    text = text.replace(
        'seats_active = { field = "seats_active", type = "number", description = "seats in active use" }\n',
        "",
    )
    text = text.replace("seats_active", "seats_in_use")
    text += (
        '\n[[usage.sources]]\nname = "seats"\npath = "seats.csv"\nkey = "domain"\n'
        '[usage.sources.metrics]\nseats_in_use = { column = "seats", description = "seats in use" }\n'
    )
    path.write_text(text, encoding="utf-8")
    rows = [[c.domain, c.seats_active] for c in world.scenario.companies if c.seats_active is not None]
    with (path.parent / "seats.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["domain", "seats"], *rows, ["nobody.example.org", 1]])


def test_the_usage_commands_as_a_user_runs_them(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, world.options.token)
    monkeypatch.setattr(output.console, "width", 400)
    config = tmp_path / "config.toml"
    _cli_config(world, config, tmp_path / "store.sqlite3")

    def cli(*args: str) -> tuple[int, str]:
        code = main(["--config", str(config), *args])
        return code, capsys.readouterr().out

    code, out = cli("usage", "preview")
    assert code == 0
    assert "columns: domain, seats" in out and "no accounts in the store yet" in out
    code, out = cli("sync")
    assert code == 0 and "usage:seats" in out
    assert "1 unmatched, 1 ambiguous (shared by several accounts)" in out
    assert cli("setup")[0] == 0
    code, out = cli("check")
    assert code == 0 and "ok   usage seats:" in out and "csv file" in out
    code, out = cli("usage", "preview", "--json")
    shown = json.loads(out)[0]
    assert shown["rows"] == shown["keys"] + 1  # the twin's domain appears twice
    assert shown["match_by"] == "domain" and 0.9 < shown["match_rate"] < 1.0
    code, out = cli("usage", "report", "--json")
    report = json.loads(out)[0]
    assert report["unmatched_keys"] == ["nobody.example.org"]
    assert report["ambiguous_keys"] == [f"{world.scenario.companies[0].domain} (2 accounts)"]
    code, out = cli("score", "--json")
    cited = next(r for r in json.loads(out) if "seats_in_use" in r["facts"])
    code, out = cli("explain", cited["account_id"])
    assert code == 0
    line = next(x for x in out.splitlines() if x.strip().startswith("seats_in_use"))
    assert "usage source seats (csv file" in line and "column seats" in line and "value of" in line
    code, out = cli("usage", "preview", "nope")
    assert code == 2


def test_a_large_query_arrives_in_chunks(world: World, tmp_path: Path) -> None:
    dsn = world.usage_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE IF NOT EXISTS tenants (tenant text, seats integer)")
        db.execute("TRUNCATE tenants")
        db.execute("INSERT INTO tenants SELECT 'tenant-' || n, n FROM generate_series(1, 250) AS n")
    source = {
        "name": "tenants",
        "url": world.usage_url,
        "query": "SELECT tenant, seats FROM tenants ORDER BY tenant",
        "key": "tenant",
        "match": "id",
        "chunk_rows": 100,
        "metrics": {"seats_in_use": {"column": "seats"}},
    }
    session = _session(world, _config(world, f"sqlite:///{tmp_path / 'store.sqlite3'}", [source]))
    try:
        read = session.usage_syncer().sync_source(session.config.usage.sources[0])
        assert (read.rows, read.pages, read.stored) == (250, 3, 250)
    finally:
        session.engine.dispose()
