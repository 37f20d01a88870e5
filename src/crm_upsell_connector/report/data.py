"""What the report shows, gathered from the store: the matrix, segments over time, top proposals,
outcomes and uplift per rule, and the last runs (from ``store.runs.run_history``, as ``runs`` lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from crm_upsell_connector.outcomes import OutcomeSummary, load_outcomes, summarise
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.engine import HOLDOUT
from crm_upsell_connector.store.runs import RunRecord, run_history
from crm_upsell_connector.store.schema import accounts, deals, recommendations

TOP_PROPOSALS = 25
LAST_RUNS = 20
HISTORY_DAYS = 366


@dataclass
class Matrix:
    """The loyalty x utilization matrix: rows low -> high loyalty, columns low -> high utilization,
    then one column for accounts whose utilization is not measured."""

    loyalty_bands: list[str]
    utilization_bands: list[str]
    segments: list[list[str]]
    counts: list[list[int]]
    revenue: list[list[float]]


@dataclass(frozen=True)
class TopProposal:
    account_id: str
    account_name: str
    segment: str
    score: float
    kind: str
    product: str
    uplift: float
    reason: str
    rule: str


@dataclass
class ReportData:
    connection: str
    generated_at: datetime
    currency: str
    matrix: Matrix
    segment_history: list[tuple[datetime, dict[str, int]]]
    top: list[TopProposal]
    outcomes: OutcomeSummary
    runs: list[RunRecord]
    accounts: int = 0
    notes: list[str] = field(default_factory=list)


def _matrix(conn: Connection, connection: str, rules: RulesConfig, now: datetime) -> tuple[Matrix, int]:
    from bisect import bisect_right

    seg = rules.segments
    rows, cols = len(seg.loyalty_bands), len(seg.utilization_bands) + 1
    counts = [[0] * cols for _ in range(rows)]
    revenue = [[0.0] * cols for _ in range(rows)]
    names = [[*row, seg.missing_utilization] for row in seg.cells]
    won = _revenue_won(conn, connection, now)
    total = 0
    query = sa.select(recommendations.c.account_id, recommendations.c.score, recommendations.c.facts).where(
        recommendations.c.connection == connection
    )
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(query)
    for account_id, score, facts in result:
        total += 1
        r = bisect_right(seg.loyalty_thresholds, score or 0.0)
        utilization = (facts or {}).get("utilization") if isinstance(facts, dict) else None
        c = cols - 1 if utilization is None else bisect_right(seg.utilization_thresholds, float(utilization))
        counts[r][c] += 1
        revenue[r][c] += won.get(account_id, 0.0)
    matrix = Matrix(list(seg.loyalty_bands), [*seg.utilization_bands, "not measured"], names, counts, revenue)
    return matrix, total


def _revenue_won(conn: Connection, connection: str, now: datetime) -> dict[str, float]:
    """Per account: revenue of deals won in the last 365 days, in the home currency where known."""
    closed = sa.func.coalesce(deals.c.close_date, deals.c.updated_at)
    amount = sa.func.coalesce(deals.c.amount_home, deals.c.amount, 0.0)
    query = (
        sa.select(deals.c.account_id, sa.func.sum(amount))
        .where(
            deals.c.connection == connection,
            deals.c.is_won == sa.true(),
            deals.c.account_id.is_not(None),
            closed >= now - timedelta(days=365),
        )
        .group_by(deals.c.account_id)
    )
    return {a: float(v or 0.0) for a, v in conn.execute(query)}


def _top(conn: Connection, connection: str, rules: RulesConfig) -> list[TopProposal]:
    r = recommendations
    names = {p.sku: p.name for p in rules.products}
    query = (
        sa.select(
            r.c.account_id,
            accounts.c.name,
            r.c.segment,
            r.c.score,
            r.c.kind,
            r.c.product_sku,
            r.c.uplift,
            r.c.reason,
            r.c.rule,
        )
        .select_from(
            r.outerjoin(
                accounts, sa.and_(accounts.c.connection == r.c.connection, accounts.c.id == r.c.account_id)
            )
        )
        .where(
            r.c.connection == connection,
            r.c.kind.is_not(None),
            sa.or_(r.c.blocked_by.is_(None), r.c.blocked_by != HOLDOUT),
        )
        .order_by(
            (sa.func.coalesce(r.c.uplift, 0.0) * sa.func.coalesce(r.c.score, 0.0)).desc(), r.c.account_id
        )
        .limit(TOP_PROPOSALS)
    )
    return [
        TopProposal(
            row.account_id,
            row.name or row.account_id,
            row.segment or "",
            float(row.score or 0.0),
            row.kind or "",
            names.get(row.product_sku or "", row.product_sku or "retention call"),
            float(row.uplift or 0.0),
            row.reason or "",
            row.rule or "",
        )
        for row in conn.execute(query)
    ]


def _segment_history(history: list[RunRecord]) -> list[tuple[datetime, dict[str, int]]]:
    """Segment counts after each run that wrote to the CRM (its ``apply`` step records them)."""
    points = []
    for run in history:
        segments = run.summary.get("segments")
        if isinstance(segments, dict) and segments:
            points.append((run.finished_at or run.started_at, {str(k): int(v) for k, v in segments.items()}))
    return points


def gather_report(
    conn: Connection,
    connection: str,
    rules: RulesConfig,
    now: datetime,
    *,
    attribution_days: int = 90,
    currency: str | None = None,
) -> ReportData:
    """Everything the report shows, read from the store (no CRM call, nothing written)."""
    matrix, total = _matrix(conn, connection, rules, now)
    families = {p.sku: p.family for p in rules.products}
    home = currency or rules.tasks.currency
    outcomes = load_outcomes(conn, connection, families, home_currency=home)
    applies = run_history(
        conn, connection, commands=["apply"], since=now - timedelta(days=HISTORY_DAYS), newest_first=False
    )
    data = ReportData(
        connection=connection,
        generated_at=now,
        currency=home or "",
        matrix=matrix,
        segment_history=_segment_history(applies),
        top=_top(conn, connection, rules),
        outcomes=summarise(outcomes, "rule", attribution_days),
        runs=run_history(conn, connection, limit=LAST_RUNS),
        accounts=total,
    )
    if total == 0:
        data.notes.append("No account has been scored yet: run 'crm-upsell run' first.")
    return data


def public_summary(run: RunRecord) -> dict[str, Any]:
    """The numbers of a run the report shows (calls, records, errors)."""
    s = run.summary
    errors = int(s.get("write_failures") or s.get("failed") or 0) + len(s.get("failed_streams") or [])
    return {
        "calls": s.get("calls"),
        "records": s.get("records"),
        "errors": errors,
        "error": s.get("error"),
    }
