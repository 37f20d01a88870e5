"""``crm-upsell demo`` and ``crm-upsell sandbox serve``: the whole product against a seeded sandbox."""

from __future__ import annotations

import json
import shlex
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crm_upsell_connector.cli import output
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.currency import resolve_home_currency
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.fields import fields_for
from crm_upsell_connector.init import example_text, toml_value
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer, find_free_port, serve_forever
from crm_upsell_connector.secrets import SecretResolver

DEMO_HOLDOUT_SHARE = 0.2
DEMO_REPORT = "crm-upsell-demo-report.html"
DEMO_ORGANIC_SHARE = 0.08


def plugin_for(crm: str) -> ConnectorPlugin:
    plugins = load_plugins()
    if crm not in plugins:
        raise ConfigError(
            f"no connector named {crm!r} is installed",
            hint=f"installed: {', '.join(sorted(plugins)) or 'none'}",
        )
    return plugins[crm]


def sandbox_config(
    plugin: ConnectorPlugin, base_url: str, options: SandboxOptions, store_url: str
) -> dict[str, Any]:
    """The example config, pointed at a running sandbox and a given store."""
    data = tomllib.loads(example_text())
    data["connections"] = {
        "demo": {"crm": plugin.name, "settings": plugin.sandbox_settings(base_url, options)}
    }
    data["store"] = {"url": store_url}
    return data


def serve_sandbox(
    *, crm: str, port: int, accounts: int, seed: int, latency_ms: int, rate_limit: int | None
) -> None:
    plugin = plugin_for(crm)
    options = SandboxOptions(accounts=accounts, seed=seed, latency_ms=latency_ms)
    if rate_limit is not None:
        options = options.model_copy(update={"rate_limit_max": rate_limit})
    output.err_console.print(f"building a {crm} scenario with {accounts} companies (seed {seed})...")
    app = plugin.sandbox_app(build_scenario(accounts=accounts, seed=seed), options)
    port = port or find_free_port()
    base_url = f"http://127.0.0.1:{port}"
    output.err_console.print(f"{crm} sandbox on {base_url}; Ctrl-C stops it")
    # What to connect with, on standard output: a config section and the sandbox's fixed credentials.
    output.console.print(sandbox_instructions(plugin, base_url, options), soft_wrap=True)
    serve_forever(app, "127.0.0.1", port)


def sandbox_instructions(plugin: ConnectorPlugin, base_url: str, options: SandboxOptions) -> str:
    """A config section for the sandbox and the exports of its credentials.

    The credentials are the sandbox's fixed ones (they open nothing but this emulator on loopback),
    so they are printed in full: a user points ``crm-upsell`` at the sandbox with them.
    """
    settings = plugin.sandbox_settings(base_url, options)
    lines = [
        "# Connect to this sandbox: add this to a config file, then run the exports below in your shell.",
        "[connections.sandbox]",
        f"crm = {json.dumps(plugin.name)}",
        "",
        "[connections.sandbox.settings]",
        *(f"{key} = {toml_value(value)}" for key, value in settings.items()),
        "",
        "# The sandbox's fixed credentials (not secrets of any real CRM):",
        *(
            f"export {name}={shlex.quote(value)}"
            for name, value in sorted(plugin.sandbox_secrets(options).items())
        ),
    ]
    return "\n".join(lines)


async def run_demo(
    *, crm: str, accounts: int, seed: int, usage_csv: bool = False, report_path: Path | None = None
) -> Path | None:
    """The demo; returns where the report was written (None when the sandbox cannot play outcomes)."""
    plugin = plugin_for(crm)
    started = time.monotonic()
    options = SandboxOptions(accounts=accounts, seed=seed)
    # The scenario is laid out relative to today, so tenure and recency read as it means them.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = build_scenario(accounts=accounts, seed=seed, now=today)
    output.console.print(f"{plugin.title} sandbox: {accounts} companies, seed {seed}", style="bold")
    with (
        SandboxServer(plugin.sandbox_app(scenario, options)) as base_url,
        tempfile.TemporaryDirectory(prefix="crm-upsell-demo-") as workdir,
    ):
        store_url = "sqlite:///" + str(Path(workdir) / "demo.sqlite3")
        data = sandbox_config(plugin, base_url, options, store_url)
        if usage_csv:
            data = _with_usage_csv(data, scenario, Path(workdir))
        # A control group, so the demo's report can show the uplift of each rule.
        data["experiment"] = {"holdout_share": DEMO_HOLDOUT_SHARE}
        config = parse_config(data, "config.example.toml (demo)")
        secrets = SecretResolver(environ=plugin.sandbox_secrets(options))
        session = Session.open(config, "demo", secrets=secrets)
        async with session.connector() as connector:
            output.console.rule("setup")
            created = await connector.ensure_fields(fields_for(session.rules))
            output.console.print(
                f"created {len(created)} field(s) in the CRM: {', '.join(created) or 'none'}"
            )

            for round_no in (1, 2):
                output.console.rule(f"run {round_no}: sync -> score -> plan -> apply")
                calls_before = connector.stats.calls
                with output.progress_bar("syncing") as advance:
                    synced = await session.sync(connector, progress=advance)
                output.sync_table(synced)
                recs = session.score()
                output.segment_counts(recs, session.rules)
                if round_no == 1:
                    output.top_proposals(recs, 10, session.rules)
                plan = session.plan(recs)
                output.console.print(plan.render(limit=5, ids=False))
                with output.progress_bar("writing") as advance:
                    report = await session.apply(connector, plan, progress=advance)
                output.apply_summary(report)
                output.console.print(f"{connector.stats.calls - calls_before} API call(s) this run")
                if round_no == 1:
                    _show_tasks(plan)
                elif plan.empty:
                    output.console.print(
                        "Second run: nothing new to write; the CRM already shows it all.", style="green"
                    )
            written = await _close_the_loop(session, connector, base_url, seed, report_path)
        session.engine.dispose()
    output.console.print(f"demo finished in {time.monotonic() - started:.1f} s")
    return written


async def _close_the_loop(
    session: Session, connector: Any, base_url: str, seed: int, report: Path | None
) -> Path | None:
    """The field acts on the tasks (played by the sandbox), a third run reads it back, the
    outcomes are shown and the report is written."""
    from crm_upsell_connector.cli.insight import print_summary, summary_for
    from crm_upsell_connector.report.session import write_session_report
    from crm_upsell_connector.sandbox.outcomes import PlayOptions, request_play
    from crm_upsell_connector.store.schema import proposals

    output.console.rule("the field acts: tasks completed, deals opened and won (played by the sandbox)")
    with session.engine.connect() as conn:
        proposed = dict(
            conn.execute(
                select(proposals.c.account_id, proposals.c.product_sku).where(
                    proposals.c.connection == session.name, proposals.c.product_sku.is_not(None)
                )
            ).all()
        )
    try:
        # Every account proposed to (held out or not) may also buy the product on its own.
        played = request_play(
            base_url, PlayOptions(seed=seed, organic=proposed, organic_share=DEMO_ORGANIC_SHARE)
        )
    except httpx.HTTPStatusError:
        output.console.print("this sandbox cannot play outcomes yet; no report")
        return None
    won = [d for d in played.deals if d.stage == "won"]
    output.console.print(
        f"{len(played.completed)} task(s) completed, {len(played.deals)} deal(s) opened, {len(won)} won"
    )
    output.console.rule("run 3: sync -> score -> plan -> apply, then the outcomes")
    synced = await session.sync(connector)
    output.sync_table(synced)
    plan = session.plan(session.score())
    output.apply_summary(await session.apply(connector, plan))
    with session.engine.connect() as conn:
        home = resolve_home_currency(conn, session.name, session.rules.tasks.currency)
    print_summary(summary_for(session), home or "")
    path = write_session_report(session, report or Path(tempfile.gettempdir()) / DEMO_REPORT)
    output.console.print(f"report: {path}", style="bold")
    return path


def _with_usage_csv(data: dict[str, Any], scenario: Scenario, workdir: Path) -> dict[str, Any]:
    from crm_upsell_connector.usage.demo import add_usage_source, write_usage_csv

    path = workdir / "product_usage.csv"
    rows = write_usage_csv(scenario, path)
    output.console.print(f"usage source product_usage: {rows} rows of seat use by domain in {path}")
    return add_usage_source(data, path)


def _show_tasks(plan: Plan, shown: int = 2) -> None:
    """A few tasks as the account owner reads them in the CRM."""
    for task in plan.tasks[:shown]:
        account = plan.account_names.get(task.account_id) or task.account_id
        output.console.rule(f"task for {plan.owner(task.owner_id)}: {account}", style="dim")
        output.console.print(task.subject, style="bold")
        for line in task.body.splitlines():
            output.console.print(f"  {line}")
    if len(plan.tasks) > shown:
        output.console.print(f"... and {len(plan.tasks) - shown} more task(s) created")
