"""Helpers for the reliability tests: a CRM sandbox on loopback, a session over it, store dumps.

Every helper works the same for HubSpot, Salesforce and Zoho; the tests parametrize over ``CRMS``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, MetaData, select

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import Connector, ConnectorPlugin, load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.init import example_text
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

CRMS = ("hubspot", "salesforce", "zoho")
CANONICAL = ("accounts", "contacts", "deals", "line_items", "products", "owners", "activities")

# Retries must be quick in tests; the CRM's own Retry-After is still honoured.
FAST_HTTP: dict[str, Any] = {
    "timeout_s": 10.0,
    "max_attempts": 12,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.1,
    "max_in_flight": 8,
}


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def sandbox_options(accounts: int, seed: int, **overrides: Any) -> SandboxOptions:
    """Generous limits (the tests are about faults, not pacing) unless a test says otherwise."""
    base: dict[str, Any] = {
        "accounts": accounts,
        "seed": seed,
        "search_rate_limit_max": 100,
        "rate_limit_max": 1000,
        "rate_limit_interval_ms": 1000,
    }
    base.update(overrides)
    return SandboxOptions(**base)


@dataclass
class CrmEnv:
    """One running sandbox of one CRM and a store file next to it."""

    crm: str
    plugin: ConnectorPlugin
    scenario: Scenario
    options: SandboxOptions
    app: Any
    base_url: str
    store_path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=lambda: dict(FAST_HTTP))
    extra_secrets: dict[str, str] = field(default_factory=dict)

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.store_path}"

    def config_data(self) -> dict[str, Any]:
        data = sandbox_config(self.plugin, self.base_url, self.options, self.store_url)
        data["connections"]["demo"]["settings"].update(self.settings)
        data["http"] = {**data.get("http", {}), **self.http}
        return data

    def session(self) -> Session:
        config = parse_config(self.config_data(), "test")
        session = Session.open(config, "demo", secrets=SecretResolver(environ=self.secrets_env()))
        return session

    def secrets_env(self) -> dict[str, str]:
        return {**self.plugin.sandbox_secrets(self.options), **self.extra_secrets}

    def state(self) -> Any:
        """The in-process sandbox object (``sandbox_state`` of the connector's sandbox module)."""
        return sandbox_module(self.plugin).sandbox_state(self.app)

    # ---- control routes ---------------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            response = client.request(method, path, json=body)
            response.raise_for_status()
            return response.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "/__sandbox/faults", faults)
        return result

    def faults_off(self) -> None:
        self.set_faults(storm_probability=0.0, error_rate=0.0, drop_rate=0.0, partial_batch_rate=0.0)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "/__sandbox/stats")
        return result

    def expire_tokens(self) -> int:
        return int(self.control("POST", "/__sandbox/expire-tokens")["expired"])

    def set_limits(self, **limits: Any) -> None:
        self.control("POST", "/__sandbox/limits", limits)


def sandbox_module(plugin: ConnectorPlugin) -> Any:
    import importlib

    return importlib.import_module(str(plugin.sandbox_module))


@contextmanager
def crm_env(
    crm: str,
    tmp_path: Path,
    *,
    accounts: int = 30,
    seed: int = 11,
    faults: FaultOptions | None = None,
    store_name: str = "store.sqlite3",
    **options: Any,
) -> Iterator[CrmEnv]:
    plugin = load_plugins()[crm]
    opts = sandbox_options(accounts, seed, **options)
    if faults is not None:
        opts = opts.model_copy(update={"faults": faults})
    scenario = build_scenario(accounts=accounts, seed=seed, now=today())
    app = plugin.sandbox_app(scenario, opts)
    with SandboxServer(app) as base_url:
        yield CrmEnv(crm, plugin, scenario, opts, app, base_url, tmp_path / store_name)


# ---- driving the pipeline ---------------------------------------------------------------------------


@dataclass
class RunResult:
    synced: int
    plan: Plan | None
    report: Any


async def setup_fields(session: Session) -> None:
    async with session.connector() as connector:
        await connector.ensure_fields(ALL_FIELDS)


async def run_pipeline(session: Session, *, apply: bool = True, full: bool = False) -> RunResult:
    """sync -> score -> plan -> apply, as ``crm-upsell run`` does."""
    async with session.connector() as connector:
        return await run_with(session, connector, apply=apply, full=full)


async def run_with(
    session: Session, connector: Connector, *, apply: bool = True, full: bool = False
) -> RunResult:
    synced = await session.sync(connector, full=full)
    if not apply:
        return RunResult(synced.records, None, None)
    plan = session.plan(session.score())
    report = await session.apply(connector, plan)
    return RunResult(synced.records, plan, report)


# ---- the store ----------------------------------------------------------------------------------------


def dump_store(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (reflected, so tables added later are included)."""
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name, table in meta.tables.items():
            out[name] = [dict(row._mapping) for row in conn.execute(select(table))]
    return out


def record_ids(engine: Engine, connection: str = "demo") -> dict[str, set[str]]:
    """The ids of every canonical record in the store, per stream table."""
    meta = MetaData()
    meta.reflect(engine, only=list(CANONICAL))
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for name in CANONICAL:
            table = meta.tables[name]
            rows = conn.execute(select(table.c.id).where(table.c.connection == connection))
            out[name] = {str(r.id) for r in rows}
    return out


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    return dump_store(engine)["outbox"]


# ---- a config file for the CLI ----------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_cli_config(env: CrmEnv, path: Path, connection: str = "demo") -> Path:
    """The example config with its connection, store and [http] pointed at ``env``."""
    data = env.config_data()
    conn = data["connections"]["demo"]
    lines = [f"[connections.{connection}]", f"crm = {_toml_value(conn['crm'])}", ""]
    lines.append(f"[connections.{connection}.settings]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in conn["settings"].items()]
    lines += ["", "[store]", f"url = {_toml_value(env.store_url)}", ""]
    text = example_text()
    head, _, rest = text.partition("[connections.main]")
    _, _, rest = rest.partition("[store]")
    # Drop the example's [store] body up to [sync]; keep everything from [sync] on.
    _, _, rest = rest.partition("[sync]")
    rest = "[sync]" + rest
    http_start = rest.index("[http]")
    http_end = rest.index("\n[", http_start + 1)
    http = ["[http]"] + [f"{k} = {_toml_value(v)}" for k, v in data["http"].items()]
    rest = rest[:http_start] + "\n".join(http) + "\n" + rest[http_end:]
    text = head + "\n".join(lines) + "\n" + rest
    tomllib.loads(text)
    path.write_text(text, encoding="utf-8")
    return path


# ---- what the CRM shows ---------------------------------------------------------------------------------


async def crm_task_keys(env: CrmEnv, scratch: Path) -> list[str]:
    """The upsell key of every task in the CRM (one entry per task, so duplicates show), read by a
    full sync into a scratch store."""
    probe = CrmEnv(
        env.crm,
        env.plugin,
        env.scenario,
        env.options,
        env.app,
        env.base_url,
        scratch,
        settings=dict(env.settings),
        http=dict(env.http),
        extra_secrets=dict(env.extra_secrets),
    )
    session = probe.session()
    try:
        async with session.connector() as connector:
            await session.sync(connector)
        meta = MetaData()
        meta.reflect(session.engine, only=["activities"])
        table = meta.tables["activities"]
        with session.engine.connect() as conn:
            rows = conn.execute(select(table.c.upsell_key).where(table.c.upsell_key.is_not(None)))
            return sorted(str(r.upsell_key) for r in rows)
    finally:
        session.engine.dispose()


def use_hubspot_oauth(env: CrmEnv) -> None:
    """HubSpot's sandbox default is a private app (no expiry): switch it to OAuth refresh tokens.
    Salesforce and Zoho sandboxes already use short-lived OAuth access tokens."""
    if env.crm != "hubspot":
        return
    env.settings.update(
        auth="oauth",
        token=None,
        client_id=env.options.client_id,
        client_secret="env:RELIABILITY_HS_CLIENT_SECRET",
        refresh_token="env:RELIABILITY_HS_REFRESH_TOKEN",
    )
    env.extra_secrets.update(
        RELIABILITY_HS_CLIENT_SECRET=env.options.client_secret,
        RELIABILITY_HS_REFRESH_TOKEN=env.options.refresh_token,
    )
