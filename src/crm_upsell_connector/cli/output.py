"""What the CLI prints: tables on a terminal, plain lines when piped, JSON on request."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.models import CheckResult
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.status import StatusReport
from crm_upsell_connector.sync import SyncReport

# No markup: CRM data (company names, error texts) may hold square brackets, shown as they are.
console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(label: str, enabled: bool | None = None) -> Iterator[Callable[[str, int], None]]:
    """A callback ``(what, n)`` that advances live bars on a terminal and does nothing otherwise."""
    if enabled is None:
        enabled = err_console.is_terminal
    if not enabled:
        yield lambda _what, _n: None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def advance(what: str, n: int) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(f"{label} {what}", total=None)
        bars.advance(tasks[what], n)

    with bars:
        yield advance


def sync_table(report: SyncReport) -> None:
    table = Table(title="Synced", show_edge=False)
    for col in ("stream", "mode", "records", "deleted", "pages"):
        table.add_column(col, justify="right" if col in ("records", "deleted", "pages") else "left")
    for s in report.streams.values():
        table.add_row(s.stream, s.mode, str(s.records), str(s.deleted), str(s.pages))
    table.add_row("total", "", str(report.records), str(report.deleted), "")
    console.print(table)
    for stream, reason in report.failed.items():
        console.print(f"FAILED {stream}: {reason} (resumes from its last committed page next run)")


def segment_counts(recs: Sequence[Recommendation]) -> None:
    counts = Counter(r.segment for r in recs)
    proposals = sum(1 for r in recs if r.proposal is not None)
    ready = sum(1 for r in recs if r.proposal is not None and r.blocked_by is None)
    blocked = Counter(r.blocked_by for r in recs if r.blocked_by)
    console.print(
        f"Scored {len(recs)} account(s); {proposals} with a proposal, {ready} of them ready for a new task."
    )
    table = Table(title="Segments", show_edge=False)
    table.add_column("segment")
    table.add_column("accounts", justify="right")
    for segment, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(segment, str(n))
    console.print(table)
    if blocked:
        console.print(
            "Guardrails (no new task): " + ", ".join(f"{name} {n}" for name, n in sorted(blocked.items()))
        )


def top_proposals(recs: Sequence[Recommendation], limit: int = 10) -> None:
    ranked = sorted(
        (r for r in recs if r.proposal is not None),
        key=lambda r: (-(r.proposal.uplift if r.proposal else 0.0), -r.score, r.account_id),
    )[:limit]
    table = Table(title=f"Top {len(ranked)} proposals", show_edge=False, show_lines=False)
    for col in ("account", "score", "product", "uplift/yr", "reason"):
        table.add_column(col, justify="right" if col in ("score", "uplift/yr") else "left", overflow="fold")
    for r in ranked:
        assert r.proposal is not None
        table.add_row(
            f"{r.account_name} ({r.account_id})",
            f"{r.score:.0f}",
            f"{r.proposal.product_name} [{r.proposal.kind}]",
            f"{r.proposal.uplift:,.0f}",
            r.reason,
        )
    console.print(table)


def apply_summary(report: ApplyReport) -> None:
    console.print(
        f"Applied: {report.updated} account(s) updated, {report.tasks_created} task(s) created"
        + (f", {report.recovered} write(s) recovered from an interrupted run" if report.recovered else "")
        + (f", {len(report.failed)} failed" if report.failed else "")
        + "."
    )
    for kind, ref, reason in report.failed[:20]:
        console.print(f"  failed {kind} {ref}: {reason}")
    if len(report.failed) > 20:
        console.print(f"  ... and {len(report.failed) - 20} more; they are retried on the next run")


def check_results(results: Sequence[CheckResult]) -> None:
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        console.print(f"{mark} {r.item}" + (f": {r.detail}" if r.detail else ""))


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if value else "-"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def status_report(report: StatusReport) -> None:
    """A few lines per connection (readable in a terminal, a mail or a log), then the workers."""
    for c in report.connections:
        console.print(f"{c.name} ({c.crm}, {c.schedule or 'not scheduled'})")
        last = c.last_run
        if last is None:
            console.print("  last run     never")
        else:
            took = f", took {last.duration_s:.1f}s" if last.duration_s is not None else ""
            by = f" on {last.worker}" if last.worker else ""
            console.print(
                f"  last run     {_when(last.started_at)} UTC: {last.status}{took} ({last.trigger or '-'}{by})"
            )
            console.print(
                f"               {_count(last.records)} record(s) synced, {_count(last.proposals)} proposal(s), "
                f"{_count(last.tasks_created)} task(s) created, {_count(last.updated)} account(s) updated"
            )
            if last.error:
                console.print(f"  error        {last.error}")
        if c.last_ok_at is not None and (last is None or last.status != "ok"):
            console.print(f"  last ok      {_when(c.last_ok_at)} UTC")
        console.print(f"  next run     {_when(c.next_run) + ' UTC' if c.next_run else '-'}")
        console.print(f"  credentials  {c.credentials.state}: {c.credentials.detail}")
        for problem in c.problems:
            console.print(f"  attention    {problem}")
    if report.workers:
        for w in report.workers:
            state = "alive" if w.alive else "silent"
            console.print(
                f"worker {w.id}: {state}, last seen {_when(w.seen_at)} UTC, runs {', '.join(w.connections)}"
            )
    else:
        console.print("no worker running (start one with 'crm-upsell schedule')")
    for j in report.jobs:
        tick = f", tick {_when(j.tick)} UTC" if j.tick else ""
        by = f", queued by {j.queued_by}" if j.queued_by else ""
        since = f" since {_when(j.since)} UTC" if j.since else ""
        if j.state == "failed":
            tries = f", after {j.attempts} attempt(s)"
        else:
            tries = f", attempt {j.attempts + 1}" if j.attempts else ""
        console.print(f"job {j.id} {j.connection}: {j.state}{since}{tick}{tries}{by}")
    console.print("healthy" if report.healthy else "needs attention")
