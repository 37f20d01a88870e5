"""``crm-upsell outcomes`` and ``crm-upsell report``: what the proposals did, and a report to look at.

Both read the store only (no CRM call, nothing written to the CRM).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from crm_upsell_connector.outcomes import OutcomeSummary
    from crm_upsell_connector.outcomes.funnel import GroupBy
    from crm_upsell_connector.pipeline import Session


from crm_upsell_connector.errors import ConfigError

_BY = ("rule", "segment", "owner", "product")


def parse_since(value: str | None) -> datetime | None:
    """``2026-01-31`` (midnight UTC) or an ISO date-time; a date-time without zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is not a date", hint="write YYYY-MM-DD, e.g. 2026-01-31"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def summary_for(session: Session, by: GroupBy = "rule", since: datetime | None = None) -> OutcomeSummary:
    from crm_upsell_connector.currency import resolve_home_currency
    from crm_upsell_connector.outcomes import load_outcomes, summarise

    with session.engine.connect() as conn:
        home = resolve_home_currency(conn, session.name, session.rules.tasks.currency)
        outcomes = load_outcomes(conn, session.name, session.families(), home_currency=home, since=since)
    return summarise(outcomes, by, session.config.outcomes.attribution_days)


def print_summary(summary: OutcomeSummary, currency: str) -> None:
    from rich.table import Table

    from crm_upsell_connector.cli import output
    from crm_upsell_connector.outcomes.funnel import STEP_LABELS

    table = Table(title=f"Outcomes by {summary.by} (attribution window {summary.attribution_days} days)")
    table.add_column(summary.by)
    for label in STEP_LABELS.values():
        table.add_column(label, justify="right")
    table.add_column("revenue won", justify="right")
    for group in [*summary.groups, summary.total]:
        cells = [group.group]
        for step in group.steps:
            if step.name == "proposed":
                cells.append(str(step.count))
            else:
                cells.append(
                    f"{step.count} {step.share * 100:.0f}% [{step.low * 100:.0f}-{step.high * 100:.0f}]"
                )
        cells.append(f"{currency} {group.revenue_won:,.0f}")
        table.add_row(*cells)
    output.console.print(table)
    output.console.print(
        "Each step: proposals that reached it, % of the proposals [95% Wilson interval]. "
        f"Not sent (held back by pacing): {summary.total.not_sent}. Held out: {summary.held_out}."
    )
    if not summary.uplift:
        return
    uplift = Table(title="Uplift per rule: won-deal rate, treated minus held out")
    for col in ("rule", "treated won/n", "held out won/n", "uplift", "95% CI", "verdict"):
        uplift.add_column(col, justify="left" if col in ("rule", "verdict") else "right")
    for u in summary.uplift:
        uplift.add_row(
            u.rule,
            f"{u.treated_won}/{u.treated}",
            f"{u.held_out_won}/{u.held_out}",
            "-" if u.uplift is None else f"{u.uplift * 100:+.1f} pts",
            "-" if u.low is None else f"{(u.low or 0) * 100:+.1f} to {(u.high or 0) * 100:+.1f}",
            u.verdict,
        )
    output.console.print(uplift)


def add_commands(app: typer.Typer, open_session: Callable[[typer.Context], Session]) -> None:
    """Add ``outcomes`` and ``report`` to ``app``; ``open_session(ctx)`` opens the chosen connection.

    Each command imports what it needs when it runs (``crm-upsell --help`` stays quick)."""

    @app.command()
    def outcomes(
        ctx: typer.Context,
        by: Annotated[str, typer.Option("--by", help="group by rule, segment, owner or product")] = "rule",
        since: Annotated[
            str | None, typer.Option("--since", help="only proposals made on or after this date (YYYY-MM-DD)")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="the funnel and the uplift as JSON")] = False,
    ) -> None:
        """What happened to each proposal: the funnel with intervals, and the uplift against the holdout."""
        from crm_upsell_connector.cli import output
        from crm_upsell_connector.currency import resolve_home_currency
        from crm_upsell_connector.outcomes.funnel import GroupBy

        if by not in _BY:
            raise ConfigError(f"--by {by!r} is not a grouping", hint=f"use one of {', '.join(_BY)}")
        start = parse_since(since)
        current = open_session(ctx)
        summary = summary_for(current, cast(GroupBy, by), start)
        if as_json:
            output.print_json(summary.to_json())
            return
        with current.engine.connect() as conn:
            home = resolve_home_currency(conn, current.name, current.rules.tasks.currency)
        print_summary(summary, home or "")

    @app.command()
    def report(
        ctx: typer.Context,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="the HTML file (default: [report] path, else ./upsell-report.html)"),
        ] = None,
    ) -> None:
        """Write the HTML report (matrix, segments over time, proposals, outcomes, uplift, runs)."""
        from crm_upsell_connector.cli import output
        from crm_upsell_connector.report.session import write_session_report

        current = open_session(ctx)
        target = out or Path(current.config.report.path or "upsell-report.html")
        try:
            written = write_session_report(current, target)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the report to {target}: {exc.strerror or exc}",
                hint="choose a writable path with --out FILE",
            ) from None
        output.console.print(f"report written to {written}")
