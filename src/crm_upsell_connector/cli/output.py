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
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.models import CheckResult
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.locale import guardrail_label, labels_for
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.status import StatusReport
from crm_upsell_connector.sync import SyncReport

# No markup: CRM data (company names, error texts) may hold square brackets, shown as they are.
console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


class Bars:
    """Live bars, one per stream: ``bars(what, n)`` advances, ``set_total`` gives the size and an estimate."""

    def __init__(self, label: str, progress: Progress) -> None:
        self.label = label
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def _task(self, what: str) -> Any:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(f"{self.label} {what}", total=None)
        return self.tasks[what]

    def __call__(self, what: str, n: int) -> None:
        self.progress.advance(self._task(what), n)

    def set_total(self, what: str, total: int) -> None:
        task = self._task(what)
        if self.progress.tasks[task].total is None:
            self.progress.update(task, total=total)


@contextmanager
def progress_bar(label: str, enabled: bool | None = None) -> Iterator[Callable[[str, int], None]]:
    """A callback ``(what, n)`` that advances live bars on a terminal and does nothing otherwise.

    Where the CRM says how many records a read returns, the bar shows ``done/total`` and the time
    left; otherwise the count and the time so far.
    """
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
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with bars:
        yield Bars(label, bars)


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
    for matched in report.usage.values():
        console.print(matched["line"], markup=False)


def segment_counts(recs: Sequence[Recommendation], rules: RulesConfig | None = None) -> None:
    """Accounts per segment (by label) and what the guardrails held back (in words)."""
    labels = labels_for(rules)
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
        table.add_row(labels.segment(segment), str(n))
    console.print(table)
    if blocked:
        console.print(
            "Held back by guardrails (no new task): "
            + "; ".join(f"{guardrail_label(rules, name)}: {n}" for name, n in sorted(blocked.items()))
        )


def top_proposals(recs: Sequence[Recommendation], limit: int = 10, rules: RulesConfig | None = None) -> None:
    labels = labels_for(rules)
    ranked = sorted(
        # Held-out accounts (the holdout's control group) are not shown: nobody proposes to them.
        (r for r in recs if r.proposal is not None and r.blocked_by != "holdout"),
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
            f"{r.proposal.product_name} ({labels.kind(r.proposal.kind)})",
            f"{r.proposal.uplift:,.0f}",
            r.reason,
        )
    console.print(table)


def apply_summary(report: ApplyReport) -> None:
    console.print(
        f"Applied: {report.updated} account(s) updated, {report.tasks_created} task(s) created"
        + (f", {report.recovered} write(s) recovered from an interrupted run" if report.recovered else "")
        + (
            f", {report.gone} skipped for account(s) no longer in the CRM (merged or deleted)"
            if report.gone
            else ""
        )
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


def _restates(problem: str, c: Any) -> bool:
    shown = [f"{c.credentials.state}: {c.credentials.detail}"]
    if c.last_run is not None:
        shown.append(c.last_run.error or f"last run {c.last_run.status}")
    return any(text and (text in problem or problem == text) for text in shown)


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
        detail = c.credentials.detail
        if last is not None and last.error and detail and detail in last.error:
            detail = "the CRM refused them in the last run (the error above)"
        console.print(f"  credentials  {c.credentials.state}: {detail}")
        # Each error once: a problem that restates the run's error or the credentials line above is
        # not printed again (``--json`` keeps the full list).
        for problem in c.problems:
            if not _restates(problem, c):
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
