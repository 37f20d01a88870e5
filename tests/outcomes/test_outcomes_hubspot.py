"""Outcomes over real HTTP: the HubSpot sandbox plays what the field did, the next sync reads it, and
the funnel per rule shows exactly that (counts and revenue), across runs and a rule change; held-out
accounts receive no write."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_upsell_connector.cli.insight import summary_for
from crm_upsell_connector.outcomes.funnel import OutcomeSummary
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.outcomes import PlayOptions, PlayReport, request_play
from crm_upsell_connector.store.schema import outbox, proposals, recommendations
from tests.outcomes.support import World, run_once, set_up, world

PREFIX = "crm_upsell_"


def _task_rules(w: World, session: Session) -> dict[str, str]:
    """HubSpot task id -> the rule of the proposal it was created for (task key in the CRM, rule as
    recorded when it was proposed)."""
    with session.engine.connect() as conn:
        by_key = dict(
            conn.execute(
                select(proposals.c.task_key, proposals.c.rule).where(proposals.c.task_key.is_not(None))
            ).all()
        )
    out = {}
    tasks = w.sandbox.tables["tasks"]
    for task_id in tasks.active:
        rec = tasks.get(task_id)
        key = (rec.props or {}).get(PREFIX + "key") if rec is not None else None
        if key:
            out[str(task_id)] = by_key[key]
    return out


def _expected(plays: list[PlayReport], rule_of_task: dict[str, str]) -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"done": 0, "opened": 0, "won": 0, "revenue": 0.0}
    )
    for play in plays:
        for task_id in play.completed:
            expected[rule_of_task[task_id]]["done"] += 1
        for deal in play.deals:
            assert deal.task_id is not None
            e = expected[rule_of_task[deal.task_id]]
            e["opened"] += 1
            if deal.stage == "won":
                e["won"] += 1
                e["revenue"] += deal.amount
    return expected


def _observed(summary: OutcomeSummary) -> dict[str, dict[str, Any]]:
    out = {}
    for group in summary.groups:
        counts = {s.name: s.count for s in group.steps}
        out[group.group] = {
            "done": counts["task_done"],
            "opened": counts["deal_opened"],
            "won": counts["deal_won"],
            "revenue": round(group.revenue_won, 2),
        }
    return out


def _compare(expected: dict[str, dict[str, Any]], observed: dict[str, dict[str, Any]]) -> None:
    for rule, e in expected.items():
        assert observed[rule] == {**e, "revenue": round(e["revenue"], 2)}, rule
    for rule, o in observed.items():
        if rule not in expected:
            assert o == {"done": 0, "opened": 0, "won": 0, "revenue": 0.0}, rule


async def test_outcomes_per_rule_match_what_the_sandbox_played(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        session = w.session()
        async with session.connector() as connector:
            await set_up(session, connector)
            await run_once(session, connector)
            first = request_play(w.base_url, PlayOptions(seed=3, complete_share=0.7, deal_share=0.7))
            assert first.completed and any(d.stage == "won" for d in first.deals)
            await run_once(session, connector)
        summary = summary_for(session)
        _compare(_expected([first], _task_rules(w, session)), _observed(summary))
        won = sum(1 for d in first.deals if d.stage == "won")
        assert summary.total.steps[-1].count == won
        assert summary.total.revenue_won == pytest.approx(
            sum(d.amount for d in first.deals if d.stage == "won")
        )
        with session.engine.connect() as conn:
            before = dict(conn.execute(select(proposals.c.id, proposals.c.rule)).all())

        # The rules change: a rule is renamed and proposes more. History keeps the rule of its time.
        data = copy.deepcopy(session.config.rules.model_dump(mode="json", exclude_none=True))
        upgrades = data["upgrades"]
        renamed = upgrades[0]["name"]
        upgrades[0]["name"] = renamed + "_v2"
        changed = w.session(upgrades=upgrades)
        async with changed.connector() as connector:
            await run_once(changed, connector)
            second = request_play(w.base_url, PlayOptions(seed=4, complete_share=1.0, deal_share=0.8))
            await run_once(changed, connector)
        with changed.engine.connect() as conn:
            after = dict(conn.execute(select(proposals.c.id, proposals.c.rule)).all())
        assert {k: after[k] for k in before} == before
        assert renamed in before.values()
        summary = summary_for(changed)
        _compare(_expected([first, second], _task_rules(w, changed)), _observed(summary))
        session.engine.dispose()
        changed.engine.dispose()


def _held_out(session: Session) -> set[str]:
    with session.engine.connect() as conn:
        return set(
            conn.execute(
                select(recommendations.c.account_id).where(recommendations.c.blocked_by == "holdout")
            ).scalars()
        )


async def test_held_out_accounts_receive_no_write_and_open_tasks_are_not_drawn(tmp_path: Path) -> None:
    async with world(tmp_path, accounts=150, seed=12) as w:
        held = w.session(experiment={"holdout_share": 0.5})
        async with held.connector() as connector:
            await set_up(held, connector)
            await run_once(held, connector)
        held_out = _held_out(held)
        with held.engine.connect() as conn:
            recorded = Counter(conn.execute(select(proposals.c.status)).scalars())
            held_rows = set(
                conn.execute(select(proposals.c.account_id).where(proposals.c.status == "held_out")).scalars()
            )
            tasked = set(conn.execute(select(outbox.c.account_id).where(outbox.c.kind == "task")).scalars())
        assert held_out, "a share of 0.5 holds some accounts out"
        assert tasked, "the others get their tasks"
        assert held_out == held_rows
        assert recorded["held_out"] == len(held_out)
        # No task and no proposal field for a held-out account; score and segment are written.
        assert not held_out & tasked
        companies = w.sandbox.tables["companies"]
        tasks_of = w.sandbox.assoc[("companies", "tasks")]
        for account_id in held_out:
            company = companies.get(int(account_id))
            assert company is not None
            values = {
                name: w.sandbox.value("companies", company, PREFIX + name)
                for name in ("next_product", "reason", "expected_uplift", "loyalty_score", "segment")
            }
            assert values["next_product"] in (None, "")
            assert values["reason"] in (None, "")
            assert values["expected_uplift"] in (None, "")
            assert values["loyalty_score"] and values["segment"]
            for task_id in tasks_of.get(int(account_id), []):
                task = w.sandbox.tables["tasks"].get(task_id)
                assert task is None or not (task.props or {}).get(PREFIX + "key")

        # The draw is stable: a rerun (a new session on the same store) holds out the same accounts.
        again = w.session(experiment={"holdout_share": 0.5})
        again.score()
        assert _held_out(again) == held_out
        assert any("too small to tell" in u.verdict for u in summary_for(again).uplift)

        # Holdout off: the same accounts get their tasks. On again: an account with an open
        # proposal task is not drawn, so none of them is held out while its task is open.
        off = w.session(experiment={"holdout_share": 0.0})
        async with off.connector() as connector:
            await run_once(off, connector)
        with off.engine.connect() as conn:
            tasked = set(conn.execute(select(outbox.c.account_id).where(outbox.c.kind == "task")).scalars())
            statuses = dict(
                conn.execute(
                    select(proposals.c.account_id, proposals.c.status).where(
                        proposals.c.account_id.in_(list(held_out))
                    )
                ).all()
            )
        now_tasked = held_out & tasked
        assert now_tasked
        assert all(statuses[a] == "task" for a in now_tasked)
        on = w.session(experiment={"holdout_share": 0.5})
        async with on.connector() as connector:
            await run_once(on, connector)
        assert not _held_out(on) & now_tasked
        for s in (held, again, off, on):
            s.engine.dispose()


async def test_a_scheduled_run_writes_the_report_to_the_configured_path(tmp_path: Path) -> None:
    from crm_upsell_connector.jobs.run import _run

    target = tmp_path / "reports" / "{connection}.html"
    async with world(tmp_path, accounts=60, seed=13) as w:
        session = w.session(report={"path": str(target)})
        async with session.connector() as connector:
            await set_up(session, connector)
        report = await _run(session, {}, "schedule")
        session.engine.dispose()
    written = tmp_path / "reports" / "demo.html"
    assert report.status == "ok"
    assert written.exists()
    text = written.read_text(encoding="utf-8")
    assert "Loyalty x utilization" in text and "Last runs" in text
    # The run just made is in the report's run history, as the runs table holds it.
    assert ">run</td>" in text
