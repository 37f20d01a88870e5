"""The mass-change guard: a plan that would rewrite much of the CRM at once is stopped before any write.

A wrong mapping (a misspelt field that turns every account "unmeasured"), a changed rule or a broken
sync shows up as a plan that changes the proposal or the segment of a large share of the accounts,
or creates a flood of tasks. ``[apply]`` sets the thresholds (``config.ApplySettings``):

- ``max_proposal_change_share``: accounts whose proposed product changes, as a share of all accounts;
- ``max_segment_change_share``: accounts whose segment changes, as a share of all accounts;
- ``max_tasks``: tasks one run creates.

The loyalty score is not counted: it drifts by a point or two every day as activity ages. Nor are
accounts written for the first time (new in the CRM, or whose earlier write failed): only accounts
that already show the product's fields count towards the shares. The first write to a CRM (no
account shows them yet) is thus exempt from the share thresholds; the task cap applies to it. Bases smaller than ``min_accounts``
are exempt from the shares too. ``--allow-mass-change`` lets one plan through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crm_upsell_connector.config import ApplySettings
from crm_upsell_connector.errors import MassChangeError
from crm_upsell_connector.plan import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Breach:
    """One threshold a plan goes over."""

    setting: str
    what: str
    count: int
    total: int | None  # None for the task cap
    limit: float

    def describe(self) -> str:
        if self.total is None:
            return (
                f"the plan creates {self.count} task(s), over [apply] {self.setting} = {int(self.limit)} "
                f"by {self.count - int(self.limit)}"
            )
        share = self.count / self.total
        return (
            f"the plan changes the {self.what} of {self.count} of {self.total} accounts ({share:.0%}), "
            f"over [apply] {self.setting} = {self.limit:.0%} by {(share - self.limit) * 100:.0f} points"
        )


def breaches(plan: Plan, settings: ApplySettings) -> list[Breach]:
    """Every threshold ``plan`` goes over (empty: it may be applied)."""
    found: list[Breach] = []
    total = plan.accounts
    if not plan.first_write and total >= max(1, settings.min_accounts):
        # Accounts written for the first time (new in the CRM, or whose earlier write failed) change
        # nothing a rep has seen: only accounts that already show the product's fields count.
        shown = [c for c in plan.changes if c.shown_before]
        proposals = sum(1 for c in shown if c.changes("next_product"))
        segments = sum(1 for c in shown if c.changes("segment"))
        if proposals / total > settings.max_proposal_change_share:
            found.append(
                Breach(
                    "max_proposal_change_share",
                    "proposal",
                    proposals,
                    total,
                    settings.max_proposal_change_share,
                )
            )
        if segments / total > settings.max_segment_change_share:
            found.append(
                Breach(
                    "max_segment_change_share", "segment", segments, total, settings.max_segment_change_share
                )
            )
    if len(plan.tasks) > settings.max_tasks:
        found.append(Breach("max_tasks", "tasks", len(plan.tasks), None, settings.max_tasks))
    return found


def enforce(plan: Plan, settings: ApplySettings, *, allow: bool) -> list[Breach]:
    """Raise ``MassChangeError`` (nothing written yet) when ``plan`` is over a threshold, unless ``allow``.

    Returns the breaches let through with ``allow`` (logged as a warning), else an empty list.
    """
    found = breaches(plan, settings)
    if not found:
        return []
    text = "; ".join(b.describe() for b in found)
    if allow:
        log.warning("mass change allowed once with --allow-mass-change: %s", text)
        return found
    settings_named = " / ".join(f"[apply] {b.setting}" for b in found)
    raise MassChangeError(
        f"stopped before writing anything: {text}",
        hint=(
            "review it with 'crm-upsell plan'; if it is right, run again with --allow-mass-change "
            f"(once), or raise {settings_named}"
        ),
    )


def review_notes(plan: Plan, settings: ApplySettings) -> list[str]:
    """Lines for a plan shown for review: the thresholds it goes over (empty when none)."""
    return [
        f"Mass-change guard: {b.describe()}; apply holds this plan unless given --allow-mass-change."
        for b in breaches(plan, settings)
    ]
