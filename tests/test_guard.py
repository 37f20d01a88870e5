"""The mass-change guard's arithmetic, the diff that keeps the changed part, and saved-plan files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crm_upsell_connector.config import ApplySettings
from crm_upsell_connector.errors import ConfigError, MassChangeError
from crm_upsell_connector.guard import breaches, enforce
from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.plan import FieldChange, Plan, show_change
from crm_upsell_connector.plan_file import load_plan

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def change(
    i: int, *, segment: tuple[str, str] = ("loyal", "loyal"), product: tuple[str, str] = ("A", "A")
) -> FieldChange:
    written = bool(segment[0] or product[0])
    before = {"loyalty_score": "50" if written else None, "segment": segment[0], "next_product": product[0]}
    after = {"loyalty_score": "52", "segment": segment[1], "next_product": product[1], "updated_at": "x"}
    return FieldChange(str(i), f"Account {i}", dict(before), after)


def task(i: int) -> TaskDraft:
    return TaskDraft(
        key=f"k{i}", account_id=str(i), owner_id="o", subject="s", body="b", due=date(2026, 3, 9)
    )


def test_score_drift_alone_is_never_a_mass_change() -> None:
    plan = Plan("main", NOW, changes=[change(i) for i in range(100)], accounts=100)
    assert breaches(plan, ApplySettings()) == []


def test_shares_over_the_threshold_are_held_with_the_numbers() -> None:
    plan = Plan(
        "main",
        NOW,
        changes=[change(i, segment=("loyal", "unmeasured")) for i in range(90)],
        accounts=100,
    )
    with pytest.raises(MassChangeError) as held:
        enforce(plan, ApplySettings(), allow=False)
    line = held.value.one_line()
    assert "segment of 90 of 100 accounts (90%)" in line and "max_segment_change_share = 25%" in line
    assert "by 65 points" in line and "--allow-mass-change" in line
    assert held.value.exit_code == 8
    assert [b.setting for b in enforce(plan, ApplySettings(), allow=True)] == ["max_segment_change_share"]


def test_proposal_changes_count_against_their_own_share() -> None:
    plan = Plan("main", NOW, changes=[change(i, product=("A", "B")) for i in range(30)], accounts=100)
    assert [b.setting for b in breaches(plan, ApplySettings())] == ["max_proposal_change_share"]
    assert breaches(plan, ApplySettings(max_proposal_change_share=0.3)) == []


def test_the_first_write_is_exempt_from_the_shares_but_not_from_the_task_cap() -> None:
    changes = [change(i, segment=("", "loyal"), product=("", "A")) for i in range(100)]
    first = Plan(
        "main", NOW, changes=changes, tasks=[task(i) for i in range(30)], accounts=100, first_write=True
    )
    assert breaches(first, ApplySettings()) == []
    assert [b.setting for b in breaches(first, ApplySettings(max_tasks=20))] == ["max_tasks"]
    assert (
        "creates 30 task(s), over [apply] max_tasks = 20 by 10"
        in breaches(first, ApplySettings(max_tasks=20))[0].describe()
    )


def test_accounts_written_for_the_first_time_do_not_count() -> None:
    # After a run whose writes failed on 30 accounts, those 30 get their first values now.
    changes = [change(i, segment=("", "loyal"), product=("", "A")) for i in range(30)]
    changes += [change(i, segment=("loyal", "champion")) for i in range(30, 40)]
    plan = Plan("main", NOW, changes=changes, accounts=100)
    assert breaches(plan, ApplySettings()) == []
    assert [b.count for b in breaches(plan, ApplySettings(max_segment_change_share=0.05))] == [10]


def test_small_bases_are_exempt_from_the_shares() -> None:
    plan = Plan("main", NOW, changes=[change(i, segment=("a", "b")) for i in range(10)], accounts=10)
    assert breaches(plan, ApplySettings()) == []
    assert breaches(plan, ApplySettings(min_accounts=5))


def test_the_diff_never_cuts_the_changed_part() -> None:
    head = "Upgrade to CRM Professional: " + "steady use over the year, " * 5
    tail = " and renewals on time." * 5
    old, new = show_change(head + "NPS 9" + tail, head + "NPS 10, seats 95% used" + tail)
    assert "NPS 9" in old and "NPS 10, seats 95% used" in new
    assert old.startswith("...") and new.endswith("...")
    assert len(new) < 120
    short_old, short_new = show_change("loyal", "champion")
    assert (short_old, short_new) == ('"loyal"', '"champion"')


def test_a_plan_file_for_another_connection_or_damaged_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    base = {"format": "crm-upsell-plan", "version": 1, "connection": "emea", "created_at": NOW.isoformat()}
    path.write_text(json.dumps(base), encoding="utf-8")
    with pytest.raises(ConfigError, match="made for connection 'emea', not 'main'"):
        load_plan(path, "main")
    with pytest.raises(ConfigError, match="damaged"):
        load_plan(path, "emea")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a readable plan file"):
        load_plan(path, "main")
    with pytest.raises(ConfigError, match="no plan file"):
        load_plan(tmp_path / "missing.json", "main")
