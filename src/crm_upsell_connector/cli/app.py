"""The commands of ``crm-upsell``; each one is a thin layer over pipeline.Session."""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
import sys
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.cli import output
from crm_upsell_connector.config import default_config_path, load_config
from crm_upsell_connector.connector import Connector, load_plugins
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.logs import setup_logging
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.sync import Progress, SyncReport

app = typer.Typer(
    name="crm-upsell",
    help="Score loyalty from your CRM, pick upsell and cross-sell proposals, write them back as fields and tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
auth_app = typer.Typer(help="Store or delete secrets in the system keyring.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="Run a CRM sandbox (an emulator of the CRM's API) on loopback.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")
app.add_typer(sandbox_app, name="sandbox")


@dataclass
class Globals:
    config: Path | None
    connection: str | None
    verbose: int
    wait: float = 0.0
    log_format: Literal["text", "json"] = "text"
    #: set by SIGTERM: a run in progress stops after committing its current page or write batch.
    stop: threading.Event = field(default_factory=threading.Event)


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    assert isinstance(obj, Globals)
    return obj


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="config file (default: $CRM_UPSELL_CONFIG or the user config dir)"
        ),
    ] = None,
    connection: Annotated[
        str | None,
        typer.Option(
            "--connection", help="which connection (a connections.NAME section) to use when there are several"
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="more logging (-vv for HTTP)")
    ] = 0,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="seconds to wait for another run on the same connection"),
    ] = 0.0,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", help="logs on standard error as 'text' lines or 'json' lines (for log collectors)"
        ),
    ] = "text",
) -> None:
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format {log_format!r}: use 'text' or 'json'")
    fmt: Literal["text", "json"] = "json" if log_format == "json" else "text"
    setup_logging(_level(verbose), fmt)
    ctx.obj = Globals(config, connection, verbose, wait, fmt)
    _stop_on_sigterm(ctx.obj.stop)


def _stop_on_sigterm(stop: threading.Event) -> None:
    """SIGTERM (a service manager, a timeout) stops a run at its next checkpoint; a second one at once."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)


def _level(verbose: int, quiet: int = logging.WARNING) -> int:
    return quiet if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG


def _session(ctx: typer.Context) -> Session:
    g = _globals(ctx)
    session = Session.from_path(g.config, g.connection)
    session.lock_wait_s = g.wait
    session.stop = g.stop
    return session


# ---- set-up -------------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    crm: Annotated[
        str | None, typer.Option(help="hubspot (more CRMs as their connectors are installed)")
    ] = None,
    name: Annotated[str, typer.Option(help="name of the connection")] = "main",
    token: Annotated[
        str | None, typer.Option(help="secret reference for the CRM token, e.g. keyring:hubspot-token")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL (a sandbox or proxy)")] = None,
    store_url: Annotated[
        str | None, typer.Option(help="store URL (default: SQLite in the user data dir)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing config file")] = False,
) -> None:
    """Write a config file from the documented example, asking for what is not given as flags."""
    from crm_upsell_connector.init import write_config

    g = _globals(ctx)
    path = g.config or default_config_path()
    interactive = sys.stdin.isatty()
    if crm is None:
        crm = typer.prompt("CRM", default="hubspot") if interactive else "hubspot"
    if token is None:
        default_ref = f"keyring:{crm}-token"
        token = (
            typer.prompt("Secret reference for the token", default=default_ref)
            if interactive
            else default_ref
        )
    written = write_config(
        path, crm=crm, name=name, token_ref=token, base_url=base_url, store_url=store_url, force=force
    )
    output.console.print(f"wrote {written}")
    secret = token.partition(":")[2]
    if crm != "hubspot":
        output.console.print(
            f"next: fill in [connections.{name}.settings] (each key is documented there), store its secrets "
            "with 'crm-upsell auth set NAME', then run 'crm-upsell check'"
        )
    elif token.startswith("keyring:"):
        output.console.print(f"next: crm-upsell auth set {secret}, then crm-upsell check")


@auth_app.command("set")
def auth_set(
    name: Annotated[str, typer.Argument(help="the name used in the config, e.g. hubspot-token")],
) -> None:
    """Store a secret in the keyring (asked for without echo, or read from standard input)."""
    value = getpass.getpass(f"value for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    SecretResolver().store(name, value)
    output.console.print(f"stored {name} in the keyring")


@auth_app.command("delete")
def auth_delete(name: Annotated[str, typer.Argument(help="the secret's name")]) -> None:
    """Remove a secret from the keyring."""
    if SecretResolver().delete(name):
        output.console.print(f"deleted {name}")
    else:
        raise ConfigError(f"no secret named {name!r} in the keyring")


@app.command()
def connectors() -> None:
    """List the CRM connectors that are installed and load."""
    plugins = load_plugins()
    if not plugins:
        output.console.print("no connectors installed")
        raise typer.Exit(1)
    for name, plugin in sorted(plugins.items()):
        output.console.print(f"{name}\t{plugin.title}")


@app.command()
def check(ctx: typer.Context) -> None:
    """Check the config, the store, the credentials, the permissions and the product's fields."""
    session = _session(ctx)
    output.console.print(f"ok   config {session.config.source}")
    output.console.print(f"ok   store {session.engine.url.render_as_string(hide_password=True)}")

    async def go() -> list[Any]:
        async with session.connector() as connector:
            return await connector.check()

    results = asyncio.run(go())
    output.check_results(results)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def setup(ctx: typer.Context) -> None:
    """Create the product's fields in the CRM (idempotent)."""
    session = _session(ctx)

    async def go() -> list[str]:
        async with session.connector() as connector:
            return await connector.ensure_fields(ALL_FIELDS)

    created = asyncio.run(go())
    if created:
        output.console.print(f"created {len(created)} field(s): {', '.join(created)}")
    else:
        output.console.print("all fields already present; nothing to do")


# ---- pipeline -----------------------------------------------------------------------------------


@app.command()
def sync(
    ctx: typer.Context, full: Annotated[bool, typer.Option("--full", help="read everything again")] = False
) -> None:
    """Read what changed in the CRM since the last sync into the store."""
    session = _session(ctx)

    async def go() -> bool:
        async with session.connector() as connector:
            with output.progress_bar("syncing") as advance:
                report = await session.sync(connector, full=full, progress=advance)
            output.sync_table(report)
            output.console.print(f"{connector.stats.calls} API call(s)")
            return not report.failed

    with session.writing():
        ok = asyncio.run(go())
    if not ok:
        raise typer.Exit(1)


@app.command()
def score(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="every account as JSON")] = False,
    top: Annotated[int, typer.Option(help="how many proposals to list")] = 10,
) -> None:
    """Score every account, segment it and pick its proposal (from the store; no CRM calls)."""
    session = _session(ctx)
    with session.writing():
        recs = session.score()
    if as_json:
        output.print_json([r.model_dump(mode="json") for r in recs])
        return
    output.segment_counts(recs)
    output.top_proposals(recs, top)


@app.command()
def explain(
    ctx: typer.Context, account_id: Annotated[str, typer.Argument(help="the CRM id of the account")]
) -> None:
    """Show the score, every factor, rule and guardrail, and the proposal for one account."""
    from crm_upsell_connector.cli.explain import render_explanation

    session = _session(ctx)
    with session.writing():
        recs = session.score()
    match = next((r for r in recs if r.account_id == account_id), None)
    if match is None:
        raise ConfigError(
            f"no account with id {account_id!r} in the store", hint="run 'crm-upsell sync' first"
        )
    render_explanation(match)


@app.command()
def plan(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON")] = False
) -> None:
    """Show every write apply would make, without making any."""
    session = _session(ctx)
    with session.writing():
        result = session.plan(session.score())
    if as_json:
        output.print_json(result.to_json())
    else:
        output.console.print(result.render(limit=50))


@app.command()
def apply(ctx: typer.Context) -> None:
    """Make the writes the plan shows (fields on accounts, tasks for owners)."""
    session = _session(ctx)

    async def go() -> bool:
        result = session.plan(session.score())
        output.console.print(result.render(limit=20))
        async with session.connector() as connector:
            return await _apply(session, connector, result)

    with session.writing():
        ok = asyncio.run(go())
    if not ok:
        raise typer.Exit(1)


async def _apply(session: Session, connector: Connector, result: Plan) -> bool:
    """Apply a plan with a progress bar; True when every write went through."""
    with output.progress_bar("writing") as advance:
        report = await session.apply(connector, result, progress=advance)
    output.apply_summary(report)
    return report.ok


class CliView:
    """Shows a pipeline run on the terminal: progress bars, the sync table, segments, the plan."""

    def progress(self, label: str) -> AbstractContextManager[Progress]:
        return output.progress_bar(label)

    def synced(self, report: SyncReport) -> None:
        output.sync_table(report)
        if report.failed:
            # Scoring on half-synced data could propose the wrong thing: write nothing this time.
            output.console.print("Nothing written to the CRM this run because a stream failed to sync.")

    def scored(self, recs: list[Recommendation]) -> None:
        output.segment_counts(recs)

    def planned(self, plan: Plan) -> None:
        output.console.print(plan.render(limit=20))

    def applied(self, report: ApplyReport) -> None:
        output.apply_summary(report)


@app.command()
def run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="stop after printing the plan")] = False,
    full: Annotated[bool, typer.Option("--full", help="read everything again")] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="hand the run to the workers (PostgreSQL store) and return")
    ] = False,
) -> None:
    """Sync, score, plan and apply, in one go."""
    if queue:
        from crm_upsell_connector.cli.queue import queue_command

        return queue_command(ctx, dry_run=dry_run, full=full)
    session = _session(ctx)

    async def go() -> bool:
        async with session.connector() as connector:
            report = await session.run_pipeline(connector, full=full, dry_run=dry_run, view=CliView())
            return report.ok

    with session.writing():
        ok = asyncio.run(go())
    if not ok:
        raise typer.Exit(1)


@app.command()
def schedule(ctx: typer.Context) -> None:
    """Run every scheduled connection on its schedule until SIGTERM or SIGINT (a background worker).

    Start as many workers as you like on one PostgreSQL store: each tick of a connection runs on
    exactly one of them. Logs go to standard error (--log-format json for log collectors).
    """
    from crm_upsell_connector.scheduler import run_worker

    g = _globals(ctx)
    if g.connection is not None:
        raise ConfigError(
            "schedule runs every connection that has a schedule; --connection does not apply",
            hint="to leave a connection out, set enabled = false in its [connections.NAME.schedule]",
        )
    setup_logging(_level(g.verbose, quiet=logging.INFO), g.log_format)
    run_worker(load_config(g.config))


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="the status as JSON")] = False,
) -> None:
    """Per connection: the last run, the next run and the credentials' health (exit 1 when unhealthy)."""
    from crm_upsell_connector.status import gather_status
    from crm_upsell_connector.store.engine import open_store

    g = _globals(ctx)
    config = load_config(g.config)
    names = [config.connection(g.connection)[0]] if g.connection is not None else None
    report = gather_status(config, open_store(config.store.url), SecretResolver(), names=names)
    if as_json:
        output.print_json(report.to_json())
    else:
        output.status_report(report)
    if not report.healthy:
        raise typer.Exit(1)


# ---- demo and sandbox ---------------------------------------------------------------------------


@app.command()
def demo(
    crm: Annotated[str, typer.Option(help="which CRM's sandbox")] = "hubspot",
    accounts: Annotated[int, typer.Option(min=10, max=50000, help="companies in the sandbox")] = 1000,
    seed: Annotated[int, typer.Option(help="scenario seed")] = 7,
) -> None:
    """Run the whole product against a CRM sandbox: setup, sync, score, plan, apply, and again."""
    from crm_upsell_connector.demo import run_demo

    asyncio.run(run_demo(crm=crm, accounts=accounts, seed=seed))


@sandbox_app.command("serve")
def sandbox_serve(
    crm: Annotated[str, typer.Option(help="which CRM to emulate")] = "hubspot",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (0: any free one)")] = 8080,
    accounts: Annotated[int, typer.Option(min=1, max=200000, help="companies to seed")] = 1000,
    seed: Annotated[int, typer.Option(help="scenario seed")] = 7,
    latency_ms: Annotated[int, typer.Option(min=0, help="added latency per request")] = 0,
    rate_limit: Annotated[int | None, typer.Option(help="requests per rate-limit interval")] = None,
) -> None:
    """Serve a seeded CRM sandbox until interrupted."""
    from crm_upsell_connector.demo import serve_sandbox

    serve_sandbox(
        crm=crm, port=port, accounts=accounts, seed=seed, latency_ms=latency_ms, rate_limit=rate_limit
    )
