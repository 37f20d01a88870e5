"""Shared helpers for rule tests: a small catalogue/rule set and feature rows with sane defaults."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from crm_upsell_connector.features import FEATURE_SCHEMA
from crm_upsell_connector.rules import RulesConfig, load_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"

PRODUCTS = [
    {
        "sku": "CRM-STARTER",
        "name": "CRM Starter",
        "family": "crm",
        "tier": 1,
        "unit_price": 25.0,
        "per_seat": True,
    },
    {
        "sku": "CRM-PRO",
        "name": "CRM Professional",
        "family": "crm",
        "tier": 2,
        "unit_price": 60.0,
        "per_seat": True,
        "pitch": "Pro adds automation.",
    },
    {
        "sku": "CRM-ENT",
        "name": "CRM Enterprise",
        "family": "crm",
        "tier": 3,
        "unit_price": 120.0,
        "per_seat": True,
    },
    {"sku": "MKT-BASIC", "name": "Marketing Basic", "family": "marketing", "tier": 1, "unit_price": 400.0},
    {
        "sku": "SUP-STD",
        "name": "Standard Support",
        "family": "support",
        "tier": 1,
        "unit_price": 150.0,
        "period": "year",
    },
]

SMALL: dict[str, Any] = {
    "features": {
        "fields": {
            "seats_purchased": {"field": "seats_purchased", "type": "number"},
            "seats_active": {"field": "seats_active", "type": "number"},
            "nps_score": {"field": "nps_score", "type": "number"},
            "do_not_contact": {"field": "do_not_contact", "type": "bool"},
        },
        "derived": {
            "seat_utilization": {
                "expr": "seats_purchased != null && seats_active != null && seats_purchased > 0.0"
                " ? seats_active / seats_purchased : null"
            }
        },
    },
    "scoring": {
        "factors": [
            {
                "name": "engagement",
                "expr": "meetings_90d",
                "weight": 50,
                "normalise": "minmax",
                "min": 0,
                "max": 10,
            },
            {
                "name": "satisfaction",
                "expr": "nps_score",
                "weight": 50,
                "normalise": "minmax",
                "min": 0,
                "max": 10,
            },
        ]
    },
    "segments": {"utilization": "seat_utilization", "tags": {"busy": "meetings_90d >= 5.0"}},
    "products": PRODUCTS,
    "upgrades": [
        {
            "name": "crm_up",
            "family": "crm",
            "when": "seat_utilization != null && seat_utilization >= 0.9",
            "priority": 10,
            "reason": "uses $seats_active of $seats_purchased seats",
        },
    ],
    "cross_sell": [
        {"name": "mkt", "product": "MKT-BASIC", "when": "meetings_90d >= 3.0", "priority": 20},
        {"name": "sup", "product": "SUP-STD", "when": "meetings_90d >= 3.0", "priority": 30},
    ],
    "retention": [
        {
            "name": "right_size",
            "product": "CRM-STARTER",
            "when": "seat_utilization != null && seat_utilization < 0.3",
            "priority": 90,
        },
    ],
    "guardrails": {
        "block": [
            {"name": "do_not_contact", "when": "do_not_contact == true"},
            {"name": "complaint", "when": "complaints_90d > 0.0", "kinds": ["upgrade", "cross_sell"]},
        ],
        "cooldown_days": 90,
        "max_new_tasks_per_owner_per_week": 3,
    },
}


def small_config(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SMALL)
    data.update(changes)
    return data


def features(account_id: str = "a1", **values: Any) -> dict[str, Any]:
    """A feature row with every built-in name: zeros for counts, None for recencies, then ``values``."""
    row: dict[str, Any] = {}
    for name, spec in FEATURE_SCHEMA.items():
        if spec.type == "number":
            row[name] = None if name.startswith("days_since") or name == "tenure_days" else 0.0
        elif spec.type == "list":
            row[name] = []
        elif spec.type == "map":
            row[name] = {}
        else:
            row[name] = None
    row.update(account_id=account_id, account_name=f"Account {account_id}", owner_id="o1", tenure_days=800.0)
    row.update(seats_purchased=None, seats_active=None, nps_score=None, do_not_contact=None)
    row.update(values)
    return row


def owning(sku: str, family: str, tier: float, quantity: float = 1.0) -> dict[str, Any]:
    return {
        "owned_skus": [sku],
        "owned_families": [family],
        "owned_products": {family: sku},
        "owned_tiers": {family: tier},
        "owned_quantity": {family: quantity},
    }


@pytest.fixture
def small_rules() -> RulesConfig:
    return load_rules(small_config(), "config.toml")


@pytest.fixture(scope="session")
def example_rules() -> RulesConfig:
    with EXAMPLE.open("rb") as f:
        return load_rules(tomllib.load(f), str(EXAMPLE.name))
