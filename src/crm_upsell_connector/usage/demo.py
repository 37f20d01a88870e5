"""``crm-upsell demo --usage-csv``: a product-usage CSV for the sandbox's companies, and its source.

The file is what an analytics export looks like: one row per workspace domain and day, seats in
use and active users, today and 90 days ago (growing for the accounts that are ready to upgrade,
shrinking for those at risk), plus a few workspaces no CRM account owns (reported as unmatched).
"""

from __future__ import annotations

import csv
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from crm_upsell_connector.sandbox.scenario import Scenario

_GROWING = ("upgrade_candidate", "covered", "cross_sell_candidate")
_SHRINKING = ("at_risk", "dormant")
UNOWNED = ("trial-workspace-1.example.net", "trial-workspace-2.example.net")
SEAT_UTILIZATION = (
    "seats_in_use != null && seats_purchased != null && seats_purchased > 0.0 ? seats_in_use / seats_purchased"
    " : (seats_purchased != null && seats_active != null && seats_purchased > 0.0"
    " ? seats_active / seats_purchased : null)"
)


def write_usage_csv(scenario: Scenario, path: Path) -> int:
    """Write the CSV; returns its number of rows (header not counted)."""
    rng = random.Random(scenario.seed)
    today = scenario.now.date()
    before = today - timedelta(days=90)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["workspace_domain", "day", "seats_in_use", "active_users_30d"])
        for company in scenario.companies:
            if company.seats_active is None:
                continue
            now_seats = company.seats_active
            if company.persona in _GROWING:
                then_seats = round(now_seats / rng.uniform(1.2, 1.5))
            elif company.persona in _SHRINKING:
                then_seats = round(now_seats * rng.uniform(1.3, 1.8))
            else:
                then_seats = round(now_seats * rng.uniform(0.9, 1.1))
            for day, seats in ((before, then_seats), (today, now_seats)):
                out.writerow([company.domain, day.isoformat(), seats, seats + rng.randint(0, 3)])
                rows += 1
        for domain in UNOWNED:
            out.writerow([domain, today.isoformat(), 3, 3])
            rows += 1
    return rows


def add_usage_source(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The demo config with the CSV as a usage source; seat use comes from it first."""
    data["usage"] = {
        "sources": [
            {
                "name": "product_usage",
                "path": str(path),
                "key": "workspace_domain",
                "match": "domain",
                "date_column": "day",
                "metrics": {
                    "seats_in_use": {"column": "seats_in_use", "description": "seats in use (product)"},
                    "active_users_30d": {
                        "column": "active_users_30d",
                        "description": "active users, 30 days",
                    },
                },
            }
        ]
    }
    derived = data.setdefault("features", {}).setdefault("derived", {})
    derived["seat_utilization"] = {
        "expr": SEAT_UTILIZATION,
        "description": "share of purchased seats in use (product usage first, else the CRM field)",
    }
    return data
