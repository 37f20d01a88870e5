"""Outcomes: what happened to each proposal, the funnel per rule, segment, owner or product, and
the uplift of each rule against the holdout.

- ``record``: the proposals of a plan are stored with the rule, segment, owner and score of the time;
- ``track``: after each sync, each proposal's task, deal, result and revenue are looked up;
- ``funnel``: the funnel and the uplift, with confidence intervals from statsmodels.
"""

from __future__ import annotations

from crm_upsell_connector.outcomes.funnel import FunnelRow, OutcomeSummary, UpliftRow, summarise
from crm_upsell_connector.outcomes.record import record_proposals
from crm_upsell_connector.outcomes.track import load_outcomes, refresh_outcomes

__all__ = [
    "FunnelRow",
    "OutcomeSummary",
    "UpliftRow",
    "load_outcomes",
    "record_proposals",
    "refresh_outcomes",
    "summarise",
]
