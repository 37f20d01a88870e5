"""What every CRM sandbox shares: the seeded scenario generator and the server plumbing (``server``)."""

from __future__ import annotations

from crm_upsell_connector.sandbox.scenario import (
    COMPLAINT_PREFIX,
    DEFAULT_NOW,
    PERSONAS,
    PRODUCTS,
    UPGRADE_PATH,
    SActivity,
    Scenario,
    SCompany,
    SContact,
    SDeal,
    SLineItem,
    SOwner,
    SProduct,
    build_scenario,
)

__all__ = [
    "COMPLAINT_PREFIX",
    "DEFAULT_NOW",
    "PERSONAS",
    "PRODUCTS",
    "UPGRADE_PATH",
    "SActivity",
    "SCompany",
    "SContact",
    "SDeal",
    "SLineItem",
    "SOwner",
    "SProduct",
    "Scenario",
    "build_scenario",
]
