"""``crm-upsell usage preview`` and ``crm-upsell usage report``, and the usage lines of ``check``.

``preview`` reads a source without storing anything: its columns, rows, a few sample rows and how
its keys match the accounts in the store. ``report`` lists, from the store after a sync, the keys
that matched no account and the accounts without usage. ``source_previews`` is the function
``discover`` (or ``init``) calls to show the sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_upsell_connector.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from crm_upsell_connector.pipeline import Session
    from crm_upsell_connector.usage.config import UsageSource
    from crm_upsell_connector.usage.preview import SourcePreview

usage_app = typer.Typer(
    help="Usage sources ([[usage.sources]]): preview one, or see what did not match.", no_args_is_help=True
)


def _session(ctx: typer.Context) -> Session:
    from crm_upsell_connector.cli.app import _session as open_session

    return open_session(ctx)


def _sources(session: Session, name: str | None) -> list[UsageSource]:
    sources = session.config.usage.for_connection(session.name)
    if name is not None:
        found = session.config.usage.source(name)
        if found is None:
            known = ", ".join(s.name for s in session.config.usage.sources) or "none"
            raise ConfigError(f"no usage source named {name!r}", hint=f"configured: {known}")
        return [found]
    if not sources:
        raise ConfigError(
            f"connection {session.name!r} has no usage source",
            hint="add a [[usage.sources]] section (see config.example.toml)",
        )
    return sources


def source_previews(session: Session, name: str | None = None) -> list[SourcePreview]:
    """Every (or the named) source of the session's connection, read and matched; raises on failure."""
    from crm_upsell_connector.usage.preview import preview_source

    return [preview_source(session.engine, session.name, s, session.secrets) for s in _sources(session, name)]


@usage_app.command("preview")
def preview(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(help="a source's name (default: every source)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the preview as JSON")] = False,
) -> None:
    """Read a usage source (nothing is stored): columns, rows, sample rows, match rate."""
    from crm_upsell_connector.cli import output

    previews = source_previews(_session(ctx), source)
    if as_json:
        output.print_json([p.to_json() for p in previews])
        return
    for p in previews:
        _show(p)


def _show(p: SourcePreview) -> None:
    from rich.table import Table

    from crm_upsell_connector.cli import output

    s = p.source
    out = output.console
    out.print(f"usage source {s.name}: {s.describe()}", style="bold", markup=False)
    out.print(f"columns: {', '.join(p.columns)}", markup=False)
    out.print(f"rows: {p.rows:,}" + (f" ({p.without_key:,} without a key)" if p.without_key else ""))
    out.print(p.matches.line(), markup=False)
    if p.matches.accounts == 0:
        out.print("no accounts in the store yet: run 'crm-upsell sync' for a match rate")
    if p.matches.unmatched_sample:
        out.print(f"unmatched keys, e.g.: {', '.join(p.matches.unmatched_sample)}", markup=False)
    if p.matches.ambiguous_sample:
        out.print(f"ambiguous keys, e.g.: {', '.join(p.matches.ambiguous_sample)}", markup=False)
    if p.sample:
        table = Table(title="first rows", show_edge=False)
        for column in p.sample[0]:
            table.add_column(column)
        for row in p.sample:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)


@usage_app.command("report")
def report(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(help="a source's name (default: every source)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many keys and accounts to list")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """From the store: the keys that matched no account and the accounts without usage."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.usage.preview import left_out

    session = _session(ctx)
    results: list[dict[str, Any]] = []
    with session.engine.connect() as conn:
        for s in _sources(session, source):
            found = left_out(conn, session.name, s, limit=limit)
            results.append(
                {
                    "source": s.name,
                    **found.matches.to_json(),
                    "unmatched_keys": found.unmatched_keys,
                    "ambiguous_keys": found.ambiguous_keys,
                    "accounts_without_usage": [{"id": i, "name": n} for i, n in found.accounts_without_usage],
                    "line": found.matches.line(),
                }
            )
    if as_json:
        output.print_json(results)
        return
    for r in results:
        output.console.print(r["line"], markup=False)
        if r["unmatched_keys"]:
            output.console.print(f"  unmatched keys: {', '.join(r['unmatched_keys'])}", markup=False)
        if r["ambiguous_keys"]:
            output.console.print(f"  ambiguous keys: {', '.join(r['ambiguous_keys'])}", markup=False)
        for a in r["accounts_without_usage"]:
            output.console.print(f"  no usage: {a['name']} ({a['id']})", markup=False)


def check_usage(session: Session) -> bool:
    """The ``check`` lines: each source reachable with its columns, and its last match counts."""
    from crm_upsell_connector.cli import output
    from crm_upsell_connector.usage.matching import stored_match_report
    from crm_upsell_connector.usage.readers import SourceReader

    ok = True
    for s in session.config.usage.for_connection(session.name):
        try:
            reader = SourceReader(s, session.secrets)
            reader.check_columns(reader.all_columns())
        except ConnectorError as exc:
            output.console.print(f"FAIL {exc.one_line()}", markup=False)
            ok = False
            continue
        with session.engine.connect() as conn:
            matches = stored_match_report(conn, session.name, s)
        seen = matches.line() if matches.keys else f"usage {s.name}: nothing synced yet"
        output.console.print(f"ok   {seen} ({s.describe()} answers with every column)", markup=False)
    return ok


def fact_sources(session: Session, account_id: str) -> dict[str, str]:
    """Where each fact ``explain`` shows came from: a usage source, a computation or the engine."""
    from crm_upsell_connector.rules.config import SCORE_NAMES
    from crm_upsell_connector.usage.features import usage_provenance

    rules = session.rules
    sources: dict[str, str] = dict.fromkeys(
        (*SCORE_NAMES, "quantity", "expected_uplift"), "the rule engine (this run)"
    )
    for name, derived in rules.features.derived.items():
        sources[name] = f"computed: {derived.expr}"
    for name, mapped in rules.features.fields.items():
        sources[name] = f"CRM account field {mapped.field}"
    with session.engine.connect() as conn:
        sources.update(
            usage_provenance(conn, session.name, account_id, session.clock(), session.config.usage)
        )
    return sources
