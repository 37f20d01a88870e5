"""Sandboxes and configs with several connections, for the scheduler, status and scale-out tests.

Each connection gets its own sandbox CRM (its own port, data and credentials): the secret references
of a connector's sandbox settings are renamed per connection (``env:X`` -> ``env:X_NAME``) and the
sandbox is built with its own token, so a connection given another's secrets would be refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.init import example_text
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from tests.reliability.harness import _toml_value, crm_account_fields, crm_tasks, sqlite_rows

__all__ = ["SandboxCrm", "Setup", "config_text", "setup", "sqlite_rows", "start_crm", "wait_for"]


@dataclass
class SandboxCrm:
    """One connection's CRM: a running sandbox and the settings and secrets that reach it."""

    name: str
    crm: str
    plugin: ConnectorPlugin
    app: Any
    server: SandboxServer
    settings: dict[str, Any]
    secrets: dict[str, str]

    def tasks(self) -> list[tuple[str, str]]:
        return crm_tasks(self.crm, self.app)

    def account_fields(self) -> dict[str, dict[str, Any]]:
        return crm_account_fields(self.crm, self.app)


def start_crm(
    name: str, crm: str, *, accounts: int = 40, seed: int = 11, latency_ms: int = 0, token: str | None = None
) -> SandboxCrm:
    plugin = load_plugins()[crm]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    secret = token or f"sandbox-{name}-credential"
    options = SandboxOptions(
        accounts=accounts,
        seed=seed,
        latency_ms=latency_ms,
        search_rate_limit_max=100,
        token=secret,
        client_secret=secret,
        refresh_token=f"{secret}-refresh",
    )
    app = plugin.sandbox_app(build_scenario(accounts=accounts, seed=seed, now=today), options)
    server = SandboxServer(app)
    base_url = server.start()
    suffix = "_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    settings: dict[str, Any] = {}
    for key, value in plugin.sandbox_settings(base_url, options).items():
        if isinstance(value, str) and value.startswith("env:"):
            value = value + suffix
        settings[key] = value
    secrets = {env + suffix: v for env, v in plugin.sandbox_secrets(options).items()}
    return SandboxCrm(name, crm, plugin, app, server, settings, secrets)


def config_text(
    crms: list[SandboxCrm],
    store_url: str,
    *,
    schedules: dict[str, str] | None = None,
    scheduler: dict[str, Any] | None = None,
    http: dict[str, Any] | None = None,
    connection_extra: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The example config with one connection per sandbox, the given store, schedules and [scheduler]."""
    lines: list[str] = []
    for c in crms:
        lines += [f"[connections.{c.name}]", f"crm = {_toml_value(c.crm)}"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in (connection_extra or {}).get(c.name, {}).items()]
        lines += ["", f"[connections.{c.name}.settings]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in c.settings.items()]
        if schedules and c.name in schedules:
            lines += ["", f"[connections.{c.name}.schedule]", schedules[c.name]]
        lines.append("")
    lines += ["[store]", f"url = {_toml_value(store_url)}", "", ""]
    text = example_text()
    start, end = text.index("[connections.main]\n"), text.index("[sync]\n")
    text = text[:start] + "\n".join(lines) + text[end:]
    for section, values in (("scheduler", scheduler), ("http", http)):
        for key, value in (values or {}).items():
            text = _set(text, section, key, value)
    return text


def _set(text: str, section: str, key: str, value: Any) -> str:
    """``key = value`` in ``[section]`` of the example text (the key is there already)."""
    start = text.index(f"[{section}]\n")
    pattern = re.compile(rf"(?m)^{re.escape(key)} = .*$")
    match = pattern.search(text, start)
    assert match is not None, f"[{section}] {key} is not in the example config"
    return text[: match.start()] + f"{key} = {_toml_value(value)}" + text[match.end() :]


@dataclass
class Setup:
    """A config file for several sandbox CRMs, and the environment that carries their secrets."""

    workdir: Path
    config: Path
    crms: list[SandboxCrm]
    environ: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "crm_upsell_connector.cli", "--config", str(self.config), *args]

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def setup_all(self) -> None:
        """``crm-upsell setup`` for every connection, in one process (a CLI start each takes long)."""
        script = (
            "import asyncio, sys\n"
            "from pathlib import Path\n"
            "from crm_upsell_connector.config import load_config\n"
            "from crm_upsell_connector.fields import ALL_FIELDS\n"
            "from crm_upsell_connector.pipeline import Session\n"
            "from crm_upsell_connector.store.engine import open_store\n"
            "config = load_config(Path(sys.argv[1]))\n"
            "engine = open_store(config.store.url)\n"
            "async def go(name):\n"
            "    async with Session.open(config, name, engine=engine).connector() as connector:\n"
            "        await connector.ensure_fields(ALL_FIELDS)\n"
            "for name in sys.argv[2:]:\n"
            "    asyncio.run(go(name))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(self.config), *(c.name for c in self.crms)],
            env=self.environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr

    def start_worker(self, *args: str, log_name: str = "worker") -> subprocess.Popen[bytes]:
        """``crm-upsell schedule`` in the background, its log in a file of the work directory."""
        log = self.workdir / f"{log_name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as handle:
            return subprocess.Popen(
                self.command(*args, "schedule"), env=self.environ, stdout=handle, stderr=subprocess.STDOUT
            )

    def close(self) -> None:
        for c in self.crms:
            c.server.stop()


@contextmanager
def setup(
    workdir: Path,
    crms: list[tuple[str, str]],
    store_url: str,
    *,
    latency_ms: int = 0,
    accounts: int = 40,
    **config: Any,
) -> Iterator[Setup]:
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[SandboxCrm] = []
    try:
        for i, (name, crm) in enumerate(crms):
            started.append(start_crm(name, crm, accounts=accounts, seed=11 + i, latency_ms=latency_ms))
        path = workdir / "config.toml"
        path.write_text(config_text(started, store_url, **config), encoding="utf-8")
        environ = {**os.environ}
        environ.pop("CRM_UPSELL_CONFIG", None)
        for c in started:
            environ.update(c.secrets)
        yield Setup(workdir, path, started, environ)
    finally:
        for c in started:
            c.server.stop()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
