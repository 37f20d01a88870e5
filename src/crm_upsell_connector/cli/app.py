"""The commands of ``crm-upsell``; each one is a thin layer over pipeline.Session."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from crm_upsell_connector.cli.init_cmd import InitCommand
from crm_upsell_connector.errors import ConfigError

if TYPE_CHECKING:
    from crm_upsell_connector.connector import Connector
    from crm_upsell_connector.pipeline import Session
    from crm_upsell_connector.plan import Plan

# Start-up stays quick (``--help`` and ``--version`` in well under 0.3 s): this module imports only
# typer; each command imports the modules it needs (SQLAlchemy, CEL, rich, the connectors) when it runs.

app = typer.Typer(
    name="crm-upsell",
    help="Score loyalty from your CRM, pick upsell and cross-sell proposals, write them back as fields and tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help (no rich panels): it renders in a fraction of the time and reads the same in a pipe.
    rich_markup_mode=None,
    epilog="Global options may also follow the command: crm-upsell check --config FILE.",
)


def _usage_app() -> None:
    # `crm-upsell usage ...` lives in cli/usage.py; registered here so --help lists it.
    from crm_upsell_connector.cli.usage import usage_app

    app.add_typer(usage_app, name="usage")


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


def _show_version(value: bool) -> None:
    if value:
        from crm_upsell_connector.cli.version import version_lines

        for line in version_lines():
            typer.echo(line)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="show the version and exit"),
    ] = False,
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
    from crm_upsell_connector.logs import setup_logging

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
    from crm_upsell_connector.pipeline import Session

    g = _globals(ctx)
    session = Session.from_path(g.config, g.connection)
    session.lock_wait_s = g.wait
    session.stop = g.stop
    return session


# ---- set-up -------------------------------------------------------------------------------------


@app.command(
    cls=InitCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def init(
    ctx: typer.Context,
    crm: Annotated[
        str | None, typer.Option(help="which CRM: one of the installed connectors ('crm-upsell connectors')")
    ] = None,
    name: Annotated[str, typer.Option(help="name of the connection")] = "main",
    token: Annotated[
        str | None,
        typer.Option(help="HubSpot: secret reference for the private-app token, e.g. keyring:hubspot-token"),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option(help="store URL (default: SQLite in the user data dir)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing config file")] = False,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="read the CRM (its credentials must be set) and propose [features.fields] and the catalogue",
        ),
    ] = False,
) -> None:
    """Write a config file from the documented example, asking for what is not given as flags.

    Each setting of the chosen connector is a flag too (--base-url, --client-id, --data-centre,
    --login-url...), written uncommented; the list per connector is at the end of this help.
    """
    from crm_upsell_connector.cli.init_cmd import run_init

    g = _globals(ctx)
    if discover and not force:
        from crm_upsell_connector.config import default_config_path

        path = g.config or default_config_path()
        if path.exists():
            from crm_upsell_connector.cli.discover import discover_into_config

            discover_into_config(path, g.connection)
            return
    run_init(
        ctx,
        config=_globals(ctx).config,
        crm=crm,
        name=name,
        token=token,
        store_url=store_url,
        force=force,
    )
    if discover:
        from crm_upsell_connector.cli.discover import discover_into_config
        from crm_upsell_connector.config import default_config_path

        discover_into_config(g.config or default_config_path(), name)


@app.command()
def connectors() -> None:
    """List the CRM connectors that are installed and load."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.connector import load_plugins

    plugins = load_plugins()
    if not plugins:
        output.console.print("no connectors installed")
        raise typer.Exit(1)
    for name, plugin in sorted(plugins.items()):
        output.console.print(f"{name}\t{plugin.title}")


@app.command()
def check(ctx: typer.Context) -> None:
    """Check the config, the store, the credentials, the permissions and the product's fields."""
    from crm_upsell_connector.cli import output

    session = _session(ctx)
    output.console.print(f"ok   config {session.config.source}")
    output.console.print(f"ok   store {session.engine.url.render_as_string(hide_password=True)}")

    from crm_upsell_connector.cli.discover import check_against_crm
    from crm_upsell_connector.cli.usage import check_usage

    code = check_against_crm(session)
    usage_ok = check_usage(session)
    if code:
        raise typer.Exit(code)
    if not usage_ok:
        raise typer.Exit(1)


@app.command()
def setup(ctx: typer.Context) -> None:
    """Create the product's fields in the CRM (idempotent)."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.fields import fields_for

    session = _session(ctx)

    async def go() -> list[str]:
        async with session.connector() as connector:
            return await connector.ensure_fields(fields_for(session.rules))

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
    from crm_upsell_connector.cli import output

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
    from crm_upsell_connector.cli import output

    session = _session(ctx)
    with session.writing():
        recs = session.score()
    if as_json:
        output.print_json([r.model_dump(mode="json") for r in recs])
        return
    if not recs:
        output.err_console.print("no accounts in the store yet: run 'crm-upsell sync' first")
        return
    output.segment_counts(recs, session.rules)
    output.top_proposals(recs, top, session.rules)


@app.command()
def explain(
    ctx: typer.Context, account_id: Annotated[str, typer.Argument(help="the CRM id of the account")]
) -> None:
    """Show the score, every factor, rule and guardrail, and the proposal for one account."""
    from crm_upsell_connector.cli.explain import render_explanation
    from crm_upsell_connector.cli.usage import fact_sources

    session = _session(ctx)
    with session.writing():
        recs = session.score()
    match = next((r for r in recs if r.account_id == account_id), None)
    if match is None:
        raise ConfigError(
            f"no account with id {account_id!r} in the store", hint="run 'crm-upsell sync' first"
        )
    render_explanation(match, fact_sources(session, account_id))


@app.command()
def plan(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="save the plan to FILE for 'crm-upsell apply FILE'")
    ] = None,
) -> None:
    """Show every write apply would make, without making any (and save it with --out FILE)."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.guard import review_notes
    from crm_upsell_connector.plan_file import save_plan

    session = _session(ctx)
    with session.writing():
        result = session.plan(session.score())
        if out is not None:
            with session.engine.connect() as conn:
                save_plan(conn, result, session.connection.crm, out)
    if as_json:
        output.print_json(result.to_json())
    else:
        output.console.print(result.render(limit=50))
        for line in review_notes(result, session.config.apply):
            output.console.print(line)
    if out is not None:
        output.err_console.print(f"saved to {out}; apply exactly this plan with 'crm-upsell apply {out}'")


@app.command()
def apply(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="a plan saved with 'plan --out FILE' (default: plan anew)")
    ] = None,
    allow_mass_change: Annotated[
        bool, typer.Option("--allow-mass-change", help="apply a plan over an [apply] threshold, once")
    ] = False,
) -> None:
    """Make the writes the plan shows (fields on accounts, tasks for owners)."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.plan_file import fresh_saved_plan

    session = _session(ctx)
    session.allow_mass_change = allow_mass_change

    async def go() -> bool:
        async with session.connector() as connector:
            if file is not None:
                result = await fresh_saved_plan(session, connector, file)
            else:
                result = session.plan(session.score())
            output.console.print(result.render(limit=20))
            return await _apply(session, connector, result)

    with session.writing():
        ok = asyncio.run(go())
    if not ok:
        raise typer.Exit(1)


async def _apply(session: Session, connector: Connector, result: Plan) -> bool:
    """Apply a plan with a progress bar; True when every write went through."""
    from crm_upsell_connector.cli import output

    with output.progress_bar("writing") as advance:
        report = await session.apply(connector, result, progress=advance)
    output.apply_summary(report)
    return report.ok


@app.command()
def run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="stop after printing the plan")] = False,
    full: Annotated[bool, typer.Option("--full", help="read everything again")] = False,
    allow_mass_change: Annotated[
        bool, typer.Option("--allow-mass-change", help="apply a plan over an [apply] threshold, once")
    ] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="hand the run to the workers (PostgreSQL store) and return")
    ] = False,
) -> None:
    """Sync, score, plan and apply, in one go."""
    if queue:
        from crm_upsell_connector.cli.queue import queue_command

        return queue_command(ctx, dry_run=dry_run, full=full)
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.cli.view import CliView

    session = _session(ctx)
    session.allow_mass_change = allow_mass_change

    async def go() -> bool:
        async with session.connector() as connector:
            view = CliView(session.rules, guard=session.config.apply)
            report = await session.run_pipeline(connector, full=full, dry_run=dry_run, view=view)
            return report.ok

    with session.writing():
        ok = asyncio.run(go())
    if dry_run:
        output.console.print("Dry run: nothing was written to the CRM.")
    if not ok:
        raise typer.Exit(1)


@app.command()
def schedule(ctx: typer.Context) -> None:
    """Run every scheduled connection on its schedule until SIGTERM or SIGINT (a background worker).

    Start as many workers as you like on one PostgreSQL store: each tick of a connection runs on
    exactly one of them. Logs go to standard error (--log-format json for log collectors).
    """
    from crm_upsell_connector.config import load_config
    from crm_upsell_connector.logs import setup_logging
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
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.config import load_config
    from crm_upsell_connector.secrets import SecretResolver
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


# Commands kept in modules of their own (imported last: they register on ``app``).
from crm_upsell_connector.cli import auth_cmd as _auth_cmd  # noqa: E402, F401
from crm_upsell_connector.cli import discover as _discover  # noqa: E402, F401
from crm_upsell_connector.cli import insight  # noqa: E402
from crm_upsell_connector.cli import runs as _runs  # noqa: E402, F401
from crm_upsell_connector.cli import sandbox_cmd as _sandbox_cmd  # noqa: E402, F401

insight.add_commands(app, _session)  # outcomes, report

_usage_app()
