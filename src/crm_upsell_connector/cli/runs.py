"""``crm-upsell runs`` and ``runs show ID``: the run history from the store (no CRM calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_upsell_connector.cli.app import _globals, app
from crm_upsell_connector.errors import ConfigError

if TYPE_CHECKING:
    from crm_upsell_connector.store.runs import RunRecord


runs_app = typer.Typer(help="The run history: when, how started, status, records, writes, failures.")
app.add_typer(runs_app, name="runs")


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if value else "-"


def _took(run: RunRecord) -> str:
    return f"{run.duration_s:.1f}s" if run.duration_s is not None else "-"


def _writes(summary: dict[str, Any]) -> str:
    if "updated" not in summary and "tasks_created" not in summary:
        return "-"
    return f"{summary.get('updated', 0)} upd, {summary.get('tasks_created', 0)} tasks"


def _failures(summary: dict[str, Any]) -> int:
    failed = summary.get("write_failures", summary.get("failed", 0))
    return int(failed) if isinstance(failed, int) else 0


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="how many runs, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="the runs as JSON")] = False,
) -> None:
    """The newest runs of the connection (all connections when the config has several and none is chosen)."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.config import load_config
    from crm_upsell_connector.store.engine import open_store
    from crm_upsell_connector.store.runs import list_runs

    if ctx.invoked_subcommand is not None:
        return
    g = _globals(ctx)
    config = load_config(g.config)
    name = config.connection(g.connection)[0] if g.connection or len(config.connections) == 1 else None
    found = list_runs(open_store(config.store.url), name, limit=limit)
    if as_json:
        output.print_json([r.to_json() for r in found])
        return
    if not found:
        output.console.print("no runs yet")
        return
    output.console.print(
        f"{'id':>6}  {'started (UTC)':<19}  {'connection':<12} {'command':<7} {'trigger':<8} {'status':<11} "
        f"{'took':>7} {'records':>8} {'calls':>6}  writes"
    )
    for r in found:
        s = r.summary
        failed = _failures(s)
        notes = [_writes(s)] if _writes(s) != "-" else []
        if failed:
            notes.append(f"{failed} failed")
        if r.status == "held":
            notes.append("held by the mass-change guard (runs show ID)")
        elif r.status == "dry-run":
            notes.append("nothing written")
        output.console.print(
            f"{r.id:>6}  {_when(r.started_at):<19}  {r.connection[:12]:<12} {r.command:<7} {r.trigger or '-':<8} "
            f"{r.status:<11} {_took(r):>7} {s.get('records', '-')!s:>8} {s.get('calls', '-')!s:>6}  "
            f"{', '.join(notes) or '-'}"
        )


@runs_app.command("show")
def show(
    ctx: typer.Context, run_id: Annotated[int, typer.Argument(help="the run's id (from 'crm-upsell runs')")]
) -> None:
    """Everything one run recorded: streams, calls, writes, failures with reasons, guard stops."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.config import load_config
    from crm_upsell_connector.store.engine import open_store
    from crm_upsell_connector.store.runs import get_run, list_runs

    g = _globals(ctx)
    config = load_config(g.config)
    run = get_run(open_store(config.store.url), run_id)
    if run is None:
        raise ConfigError(f"no run with id {run_id} in the store", hint="'crm-upsell runs' lists them")
    s = run.summary
    out = output.console.print
    out(f"run {run.id}: {run.command} on {run.connection}, {run.status}")
    out(f"  started    {_when(run.started_at)} UTC ({run.trigger or 'unknown'})")
    out(f"  finished   {_when(run.finished_at)} UTC, took {_took(run)}")
    if "host" in s:
        out(f"  by         {s.get('host')}:{s.get('pid')}")
    if s.get("dry_run"):
        out("  dry run    nothing was written to the CRM")
    streams = s.get("streams") or {}
    if streams:
        out(f"  records    {s.get('records', 0)} in all")
        for stream, count in sorted(streams.items()):
            out(f"    {stream:<16} {count}")
    for key, label in (
        ("calls", "API calls"),
        ("accounts", "accounts"),
        ("proposals", "proposals"),
        ("updates_planned", "updates planned"),
        ("tasks_planned", "tasks planned"),
        ("updated", "updated"),
        ("tasks_created", "tasks created"),
    ):
        if key in s:
            out(f"  {label:<16} {s[key]}")
    for stream, reason in (s.get("failed_streams") or {}).items():
        out(f"  stream failed {stream}: {reason}")
    failures = s.get("failures") or []
    if failures:
        out(f"  write failures {_failures(s) or len(failures)}:")
        for f in failures:
            out(f"    {f.get('kind')} {f.get('ref')}: {f.get('reason')}")
    if s.get("guard"):
        out(f"  held       {s['guard']}")
    for allowed in s.get("guard_allowed") or []:
        out(f"  allowed    {allowed} (--allow-mass-change)")
    if s.get("error") and not s.get("guard"):
        out(f"  error      {s.get('reason') or s['error']}")
    for step in reversed(list_runs(open_store(config.store.url), parent_id=run.id, limit=0)):
        out(f"  step {step.id}   {step.command}: {step.status}, took {_took(step)}")
