"""Crash trials: run the real CLI against an in-process CRM sandbox, SIGKILL it, rerun, compare.

A trial starts a fresh sandbox and a fresh SQLite store, launches ``crm-upsell run`` as a subprocess,
kills it with SIGKILL after a delay, runs ``crm-upsell run`` again normally and compares the CRM and
the store with those of an uninterrupted reference run on a sandbox built from the same seed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.init import example_text
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

CRMS = ("hubspot", "salesforce", "zoho")
ACCOUNTS = 40
SEED = 11
STORE_TABLES = ("accounts", "contacts", "deals", "line_items", "activities", "products", "owners")
CONNECTION = "main"
RUN_TIMEOUT_S = 120
_MIGRATING = threading.Lock()

# Where each sandbox keeps accounts and tasks, and the attribute holding values written through the API.
_LAYOUT = {
    "hubspot": ("companies", "tasks", "props"),
    "salesforce": ("Account", "Task", "over"),
    "zoho": ("Accounts", "Tasks", "vals"),
}


# ---- config -------------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def config_text(plugin: ConnectorPlugin, base_url: str, options: SandboxOptions, store: Path) -> str:
    """The example config with its connection pointed at the sandbox and its store at ``store``."""
    data = sandbox_config(plugin, base_url, options, f"sqlite:///{store}")
    (connection,) = data["connections"].values()
    lines = [
        "[connections.main]",
        f"crm = {_toml_value(connection['crm'])}",
        "",
        "[connections.main.settings]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in connection["settings"].items()]
    lines += ["", "[store]", f"url = {_toml_value(data['store']['url'])}", "", ""]
    text = example_text()
    start, end = text.index("[connections.main]\n"), text.index("[sync]\n")
    text = text[:start] + "\n".join(lines) + text[end:]
    parsed = tomllib.loads(text)
    assert parsed["connections"] == {CONNECTION: connection}
    assert parsed["store"] == data["store"]
    return text


# ---- a sandbox whose write responses can be held back --------------------------------------------------


class HoldResponses:
    """ASGI wrapper: when ``hold_s`` > 0, a request is handled at once but its answer is sent late.

    The CRM has then made the write while the client still waits for the answer: the window in which
    a crash leaves a task created in the CRM and ``sent`` (unconfirmed) in the outbox.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.hold_s = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hold = self.hold_s
        if scope["type"] != "http" or hold <= 0 or str(scope["path"]).startswith("/__sandbox"):
            await self.app(scope, receive, send)
            return

        async def late(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(hold)
            await send(message)

        await self.app(scope, receive, late)


@dataclass
class Env:
    """One running sandbox, a store file and a config for them."""

    crm: str
    plugin: ConnectorPlugin
    app: Any
    holder: HoldResponses
    server: SandboxServer
    workdir: Path
    config: Path
    store: Path
    environ: dict[str, str]
    log: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.server.stop()

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running the CLI

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "crm_upsell_connector.cli", "--config", str(self.config), *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args),
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        self.log.append(
            f"$ {' '.join(args)} -> {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
        return done

    def must(self, *args: str) -> float:
        started = time.monotonic()
        done = self.cli(*args)
        assert done.returncode == 0, f"{self.crm}: {' '.join(args)} exited {done.returncode}\n{self.log[-1]}"
        return time.monotonic() - started

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(*args), env=self.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    # -- reading the store

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return sqlite_rows(self.store, sql)

    def phase(self) -> str:
        """Where a killed run stopped: in sync, between sync and apply, or in apply."""
        commands = dict(self.query("SELECT command, max(status = 'ok') FROM runs GROUP BY command"))
        if "apply" in commands or self.query("SELECT 1 FROM outbox LIMIT 1"):
            return "apply"
        if commands.get("sync"):
            return "score/plan"
        return "sync" if commands else "start-up"


def sqlite_rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows from a SQLite store that another process writes; [] before its tables exist."""
    if not store.exists():
        return []
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


def open_env(crm: str, workdir: Path, *, seed: int = SEED, accounts: int = ACCOUNTS) -> Env:
    """A fresh sandbox for ``crm`` (scenario laid out relative to today) and a fresh store in ``workdir``."""
    plugin = load_plugins()[crm]
    workdir.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    options = SandboxOptions(accounts=accounts, seed=seed, search_rate_limit_max=100)
    app = plugin.sandbox_app(build_scenario(accounts=accounts, seed=seed, now=today), options)
    holder = HoldResponses(app)
    server = SandboxServer(holder)
    base_url = server.start()
    store = workdir / "store.sqlite3"
    config = workdir / "config.toml"
    config.write_text(config_text(plugin, base_url, options, store), encoding="utf-8")
    environ = {**os.environ, **plugin.sandbox_secrets(options)}
    environ.pop("CRM_UPSELL_CONFIG", None)
    return Env(crm, plugin, app, holder, server, workdir, config, store, environ)


# ---- what the CRM and the store show ------------------------------------------------------------------


def _written(rec: Any, attr: str) -> dict[str, Any]:
    return dict(getattr(rec, attr) or {})


def _is_product_field(name: str) -> bool:
    lower = name.lower()
    return "upsell" in lower and "updated_at" not in lower and not lower.endswith(("key", "key__c"))


def _task_key(values: dict[str, Any]) -> str | None:
    for name, value in values.items():
        lower = name.lower()
        if "upsell" in lower and (lower.endswith("key") or lower.endswith("key__c")) and value:
            return str(value)
    return None


def crm_account_fields(crm: str, app: Any) -> dict[str, dict[str, Any]]:
    """The product's fields (all but the updated-at stamp) on every account that has any."""
    state = _state(crm, app)
    table_name, _, attr = _LAYOUT[crm]
    tables = state.org.tables if crm == "zoho" else state.tables
    out: dict[str, dict[str, Any]] = {}
    with state.lock:
        for rec in tables[table_name].recs.values():
            values = {k: v for k, v in _written(rec, attr).items() if _is_product_field(k)}
            if values:
                out[str(rec.id)] = values
    return out


def crm_tasks(crm: str, app: Any) -> list[tuple[str, str]]:
    """(task key, account id) of every task in the CRM that carries the product's key."""
    state = _state(crm, app)
    _, table_name, attr = _LAYOUT[crm]
    tables = state.org.tables if crm == "zoho" else state.tables
    out: list[tuple[str, str]] = []
    with state.lock:
        for rec in tables[table_name].recs.values():
            if crm == "hubspot" and rec.archived_ms is not None:
                continue
            if crm == "salesforce" and rec.deleted_ms is not None:
                continue
            values = _written(rec, attr)
            key = _task_key(values)
            if key is None:
                continue
            if crm == "hubspot":
                linked = state.assoc[("tasks", "companies")].get(rec.id, [])
                account = ",".join(str(i) for i in sorted(linked))
            elif crm == "salesforce":
                account = str(values.get("WhatId"))
            else:
                account = str(values.get("What_Id"))
            out.append((key, account))
    return out


def _state(crm: str, app: Any) -> Any:
    if crm == "hubspot":
        from crm_upsell_hubspot.sandbox import sandbox_state as hubspot_state

        return hubspot_state(app)
    if crm == "salesforce":
        from crm_upsell_salesforce.sandbox import sandbox_state as salesforce_state

        return salesforce_state(app)
    from crm_upsell_zoho.sandbox import sandbox_state as zoho_state

    return zoho_state(app)


@dataclass
class Snapshot:
    """What a finished run leaves behind, in the form two runs are compared in."""

    tasks: list[tuple[str, str]]
    fields: dict[str, dict[str, Any]]
    counts: dict[str, int]
    ids: dict[str, set[str]]
    task_activity_keys: list[str]
    product_fields: dict[str, dict[str, Any]]
    open_outbox: list[tuple[Any, ...]]


def snapshot(env: Env) -> Snapshot:
    counts: dict[str, int] = {}
    ids: dict[str, set[str]] = {}
    for table in STORE_TABLES:
        where = f"connection = '{CONNECTION}'"
        if table == "activities":
            # Tasks this product created get CRM ids that may differ between two runs: compared by key.
            where += " AND upsell_key IS NULL"
        rows = env.query(f"SELECT id FROM {table} WHERE {where}")
        counts[table] = len(rows)
        ids[table] = {str(r[0]) for r in rows}
    keys = [str(r[0]) for r in env.query("SELECT upsell_key FROM activities WHERE upsell_key IS NOT NULL")]
    product_fields = {
        # Apply remembers an empty field as "", a sync reads it back as None: the same for the CRM.
        str(i): {k: v or None for k, v in json.loads(pf or "{}").items() if k != "updated_at"}
        for i, pf in env.query("SELECT id, product_fields FROM accounts")
    }
    product_fields = {k: v for k, v in product_fields.items() if v}
    open_outbox = env.query(
        "SELECT kind, ref, status, error FROM outbox WHERE status IN ('pending', 'sent', 'failed')"
    )
    return Snapshot(
        crm_tasks(env.crm, env.app),
        crm_account_fields(env.crm, env.app),
        counts,
        ids,
        keys,
        product_fields,
        open_outbox,
    )


def differences(reference: Snapshot, got: Snapshot) -> list[str]:
    """Every way ``got`` departs from the uninterrupted ``reference`` (empty: the same)."""
    problems: list[str] = []
    twice = sorted(k for k, n in Counter(k for k, _ in got.tasks).items() if n > 1)
    if twice:
        problems.append(f"CRM: task key(s) created more than once: {twice[:5]} ({len(twice)} in all)")
    ref_tasks, got_tasks = set(reference.tasks), set(got.tasks)
    if ref_tasks != got_tasks:
        problems.append(
            f"CRM: tasks differ: missing {sorted(ref_tasks - got_tasks)[:5]} "
            f"({len(ref_tasks - got_tasks)}), extra {sorted(got_tasks - ref_tasks)[:5]} "
            f"({len(got_tasks - ref_tasks)})"
        )
    if reference.fields != got.fields:
        accounts = sorted(
            a for a in set(reference.fields) | set(got.fields) if reference.fields.get(a) != got.fields.get(a)
        )
        first = accounts[0]
        problems.append(
            f"CRM: product fields differ on {len(accounts)} account(s), e.g. {first}: "
            f"expected {reference.fields.get(first)}, got {got.fields.get(first)}"
        )
    for table in STORE_TABLES:
        if reference.counts[table] != got.counts[table] or reference.ids[table] != got.ids[table]:
            problems.append(
                f"store: {table}: {got.counts[table]} row(s), expected {reference.counts[table]}; "
                f"missing {sorted(reference.ids[table] - got.ids[table])[:5]}, "
                f"extra {sorted(got.ids[table] - reference.ids[table])[:5]}"
            )
    key_twice = sorted(k for k, n in Counter(got.task_activity_keys).items() if n > 1)
    if key_twice:
        problems.append(f"store: task key(s) on more than one activity: {key_twice[:5]}")
    if set(got.task_activity_keys) != set(reference.task_activity_keys):
        problems.append(
            "store: the product's tasks differ: missing "
            f"{sorted(set(reference.task_activity_keys) - set(got.task_activity_keys))[:5]}, extra "
            f"{sorted(set(got.task_activity_keys) - set(reference.task_activity_keys))[:5]}"
        )
    if reference.product_fields != got.product_fields:
        problems.append("store: the accounts' product fields differ from the reference run's")
    if got.open_outbox:
        problems.append(f"store: outbox rows left open: {got.open_outbox[:5]} ({len(got.open_outbox)})")
    return problems


# ---- reference and trials -----------------------------------------------------------------------------


@dataclass
class Reference:
    crm: str
    snapshot: Snapshot
    run_s: float  # one uninterrupted `run`, from launch to exit
    sync_window: tuple[float, float]  # seconds after launch
    apply_window: tuple[float, float]

    def plan_kill(self, rng: random.Random, number: int) -> tuple[str, float]:
        """Odd trials die during the sync, even ones during the apply.

        The delay counts from the moment the killed run reaches that phase (seen in its store), so a
        slow start-up on a loaded machine does not push every kill into the start-up.
        """
        if number % 2:
            return "sync", rng.uniform(0, self.sync_window[1] - self.sync_window[0])
        return "apply", rng.uniform(0, self.apply_window[1] - self.apply_window[0])


def setup_fields(env: Env) -> None:
    """`crm-upsell setup`, in this process (it is never killed, and this spares a CLI start-up)."""
    config = parse_config(tomllib.loads(env.config.read_text(encoding="utf-8")), str(env.config))
    with _MIGRATING:  # alembic's command API is not thread-safe
        session = Session.open(config, CONNECTION, secrets=SecretResolver(environ=env.environ))

    async def go() -> None:
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)

    try:
        asyncio.run(go())
    finally:
        session.engine.dispose()


def reference(crm: str, workdir: Path) -> Reference:
    """An uninterrupted run on a sandbox of the same seed; it must produce tasks and field writes."""
    with open_env(crm, workdir) as env:
        setup_fields(env)
        launched = time.time()
        process = env.start("run")
        assert process.wait(timeout=RUN_TIMEOUT_S) == 0, f"{crm}: the reference run failed"
        run_s = time.time() - launched
        snap = snapshot(env)
        windows = {
            command: (_seconds(started) - launched, _seconds(finished) - launched)
            for command, started, finished in env.query("SELECT command, started_at, finished_at FROM runs")
        }
    assert snap.tasks and snap.fields, (
        f"{crm}: the reference run wrote nothing; the trials would prove nothing"
    )
    return Reference(crm, snap, run_s, windows["sync"], windows["apply"])


def _seconds(stamp: Any) -> float:
    moment = datetime.fromisoformat(str(stamp))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class Trial:
    crm: str
    number: int
    delay_s: float
    phase: str  # where the kill landed: sync, score/plan, apply, or "finished" (the run beat the kill)
    problems: list[str]
    log: list[str]

    def describe(self) -> str:
        head = f"{self.crm} trial {self.number}: SIGKILL after {self.delay_s:.3f} s, in {self.phase}"
        if not self.problems:
            return head + ": same as the uninterrupted run"
        return head + ":\n  " + "\n  ".join(self.problems) + "\n" + "\n".join(self.log[-3:])


def kill_after(process: subprocess.Popen[bytes], delay_s: float) -> bool:
    """SIGKILL ``process`` after ``delay_s``; False when it had already finished."""
    try:
        process.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    return False


def _wait_for(env: Env, process: subprocess.Popen[bytes], sql: str) -> bool:
    """Poll the store until ``sql`` returns a row; False when the process ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if env.query(sql):
                return True
        except sqlite3.OperationalError:  # locked or mid-migration: look again
            pass
        time.sleep(0.005)
    return False


_SYNC_STARTED = "SELECT 1 FROM runs WHERE command = 'sync'"
_SYNC_DONE = "SELECT 1 FROM runs WHERE command = 'sync' AND status = 'ok'"
_APPLY_STARTED = "SELECT 1 FROM runs WHERE command = 'apply'"


def run_trial(ref: Reference, workdir: Path, number: int, rng: random.Random) -> Trial:
    """setup; `run` killed at a random point of one phase; `run` again; compared with the reference."""
    target, delay_s = ref.plan_kill(rng, number)
    with open_env(ref.crm, workdir) as env:
        setup_fields(env)
        process = env.start("run")
        _wait_for(env, process, _SYNC_STARTED if target == "sync" else _APPLY_STARTED)
        killed = kill_after(process, delay_s)
        phase = env.phase() if killed else "finished"
        rerun = env.cli("run")
        problems = [] if rerun.returncode == 0 else [f"the rerun exited {rerun.returncode}"]
        got = snapshot(env)
    problems += differences(fresh_reference(ref.crm, workdir / "reference"), got)
    return Trial(ref.crm, number, delay_s, f"{phase} (aimed at {target})", problems, env.log)


def fresh_reference(crm: str, workdir: Path) -> Snapshot:
    """An uninterrupted run made right now: recommendations depend on the time of day (days since
    the last contact...), so a trial is compared with a run of the same minute, not one made earlier."""
    with open_env(crm, workdir) as env:
        setup_fields(env)
        env.must("run")
        return snapshot(env)


def run_apply_trial(ref: Reference, workdir: Path, *, hold_s: float = 0.6) -> Trial:
    """`run` killed while a task batch is created in the CRM but its answer not yet received."""
    with open_env(ref.crm, workdir) as env:
        setup_fields(env)
        started = time.monotonic()
        process = env.start("run")
        phase = "apply (no task seen in flight)"
        try:
            if _wait_for(env, process, _SYNC_DONE):
                env.holder.hold_s = hold_s  # from here on every answer comes late
                if _wait_for(env, process, "SELECT 1 FROM outbox WHERE kind = 'task' AND status = 'sent'"):
                    time.sleep(hold_s / 3)  # the CRM has the tasks; the answer is still held back
                    phase = "apply, a task batch sent and unconfirmed"
        finally:
            delay_s = time.monotonic() - started
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        env.holder.hold_s = 0.0
        in_flight = env.query("SELECT count(*) FROM outbox WHERE status = 'sent'")
        created = len(crm_tasks(env.crm, env.app))
        phase += f" ({in_flight[0][0] if in_flight else 0} outbox row(s) sent, {created} task(s) in the CRM)"
        rerun = env.cli("run")
        problems = [] if rerun.returncode == 0 else [f"the rerun exited {rerun.returncode}"]
        got = snapshot(env)
    problems += differences(fresh_reference(ref.crm, workdir / "reference"), got)
    return Trial(ref.crm, 0, delay_s, phase, problems, env.log)
