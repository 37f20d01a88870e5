"""Every CRM sandbox plays outcomes, and the next sync brings them back as the same funnel."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_upsell_connector.cli.insight import summary_for
from crm_upsell_connector.outcomes import load_outcomes
from crm_upsell_connector.sandbox.outcomes import PlayOptions, request_play
from crm_upsell_connector.store.schema import activities, proposals
from tests.outcomes.support import run_once, set_up, world


@pytest.mark.parametrize("crm", ["hubspot", "salesforce", "zoho"])
async def test_played_outcomes_come_back_through_the_sync(tmp_path: Path, crm: str) -> None:
    async with world(tmp_path, accounts=100, seed=31, crm=crm) as w:
        session = w.session(experiment={"holdout_share": 0.0})
        async with session.connector() as connector:
            await set_up(session, connector)
            await run_once(session, connector)
            played = request_play(w.base_url, PlayOptions(seed=9, complete_share=0.8, deal_share=0.8))
            await run_once(session, connector)
        with session.engine.connect() as conn:
            key_of = dict(conn.execute(select(activities.c.id, activities.c.upsell_key)).all())
            rule_of = dict(conn.execute(select(proposals.c.task_key, proposals.c.rule)).all())
        summary = summary_for(session)
        with session.engine.connect() as conn:
            outcomes = load_outcomes(conn, session.name, session.families())
        session.engine.dispose()
    assert played.completed and played.deals
    done = Counter(rule_of[key_of[t]] for t in played.completed)
    won = [d for d in played.deals if d.stage == "won"]
    won_by_rule = Counter(rule_of[key_of[d.task_id]] for d in won if d.task_id)
    revenue = Counter()
    for d in won:
        revenue[rule_of[key_of[d.task_id]]] += d.amount  # type: ignore[index]
    for group in summary.groups:
        counts = {s.name: s.count for s in group.steps}
        assert counts["task_done"] == done[group.group], group.group
        assert counts["deal_opened"] == sum(
            1 for d in played.deals if d.task_id and rule_of[key_of[d.task_id]] == group.group
        ), (group.group, [o for o in outcomes if o.rule == group.group])
        assert counts["deal_won"] == won_by_rule[group.group]
        assert group.revenue_won == pytest.approx(revenue[group.group])
