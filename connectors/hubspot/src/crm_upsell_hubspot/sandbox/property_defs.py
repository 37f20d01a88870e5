"""The standard property definitions of each object type (name, label, type, options)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_upsell_hubspot.sandbox.catalog import _CREATED_PROP, OBJECT_TYPES
from crm_upsell_hubspot.sandbox.engagement import ENGAGEMENT_PROPERTY_DEFS


def _options(*values: str) -> list[dict[str, Any]]:
    return [
        {"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
        for i, v in enumerate(values)
    ]


# name, label, type, fieldType, options, read-only value
_P = tuple[str, str, str, str, list[dict[str, Any]], bool]


def _standard_properties(currencies: Sequence[str] = ("USD",)) -> dict[str, list[_P]]:
    """Each object type's standard properties; ``currencies`` are the account's (company first)."""
    ro = True
    system: dict[str, list[_P]] = {
        t: [
            ("hs_object_id", "Record ID", "number", "number", [], ro),
            (_CREATED_PROP[t], "Create Date", "datetime", "date", [], ro),
            ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", [], ro),
        ]
        for t in OBJECT_TYPES
    }
    system["contacts"].append(("lastmodifieddate", "Last Modified Date", "datetime", "date", [], ro))
    owner: _P = ("hubspot_owner_id", "Owner", "enumeration", "select", [], False)
    ts: _P = ("hs_timestamp", "Activity date", "datetime", "date", [], False)
    lifecycle = _options(
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    )
    stages = _options(
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    )
    freq = _options("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually")
    bool_opts = [
        {"label": "True", "value": "true", "displayOrder": 0, "hidden": False},
        {"label": "False", "value": "false", "displayOrder": 1, "hidden": False},
    ]
    money = [
        {"label": code, "value": code, "displayOrder": i, "hidden": False}
        for i, code in enumerate(currencies)
    ]
    # Ids merged into this record, ";"-separated; set by HubSpot on a merge, read-only
    # (https://developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-and-companies).
    merged: _P = ("hs_merged_object_ids", "Merged record IDs", "enumeration", "checkbox", [], True)
    own: dict[str, list[_P]] = {
        "companies": [
            ("name", "Company name", "string", "text", [], False),
            ("domain", "Company Domain Name", "string", "text", [], False),
            ("industry", "Industry", "enumeration", "select", [], False),
            ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", lifecycle, False),
            owner,
            ("seats_purchased", "Seats purchased", "number", "number", [], False),
            ("seats_active", "Seats active", "number", "number", [], False),
            ("nps_score", "NPS score", "number", "number", [], False),
            (
                "onboarding_stage",
                "Onboarding stage",
                "enumeration",
                "select",
                _options("kickoff", "implementation", "live"),
                False,
            ),
            ("do_not_contact", "Do not contact", "bool", "booleancheckbox", bool_opts, False),
            merged,
        ],
        "contacts": [
            ("email", "Email", "string", "text", [], False),
            ("firstname", "First Name", "string", "text", [], False),
            ("lastname", "Last Name", "string", "text", [], False),
            ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", lifecycle, False),
            ("associatedcompanyid", "Primary Associated Company ID", "number", "number", [], False),
            owner,
            merged,
            *ENGAGEMENT_PROPERTY_DEFS,
        ],
        "deals": [
            ("dealname", "Deal Name", "string", "text", [], False),
            ("dealstage", "Deal Stage", "enumeration", "radio", stages, False),
            ("pipeline", "Pipeline", "enumeration", "select", _options("default"), False),
            ("amount", "Amount", "number", "number", [], False),
            ("closedate", "Close Date", "datetime", "date", [], False),
            # Only the account's currencies are valid codes (HubSpot changelog "Enforcing Deal
            # Currency Code Validation", 2023-07-31: INVALID_OPTION otherwise).
            ("deal_currency_code", "Currency", "enumeration", "select", money, False),
            # Calculated from amount at the account's exchange rates; read-only.
            ("amount_in_home_currency", "Amount in company currency", "number", "number", [], True),
            ("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", bool_opts, True),
            ("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", bool_opts, True),
            owner,
        ],
        "line_items": [
            ("name", "Name", "string", "text", [], False),
            ("hs_product_id", "Product ID", "number", "number", [], False),
            ("hs_sku", "SKU", "string", "text", [], False),
            ("quantity", "Quantity", "number", "number", [], False),
            ("price", "Unit price", "number", "number", [], False),
            ("amount", "Net price", "number", "number", [], True),
            ("recurringbillingfrequency", "Billing frequency", "enumeration", "select", freq, False),
            ("hs_recurring_billing_period", "Term", "string", "text", [], False),
            # https://developers.hubspot.com/changelog/bugfix-currency-validation-for-line-items-api
            ("hs_line_item_currency_code", "Currency", "enumeration", "select", money, False),
        ],
        "products": [
            ("name", "Name", "string", "text", [], False),
            ("hs_sku", "SKU", "string", "text", [], False),
            ("price", "Unit price", "number", "number", [], False),
            ("description", "Description", "string", "textarea", [], False),
            ("recurringbillingfrequency", "Billing frequency", "enumeration", "select", freq, False),
            (
                "family",
                "Product family",
                "enumeration",
                "select",
                _options("crm", "marketing", "support", "analytics"),
                False,
            ),
            ("tier", "Tier", "number", "number", [], False),
        ],
        "calls": [
            ts,
            owner,
            ("hs_call_title", "Call Title", "string", "text", [], False),
            ("hs_call_body", "Call notes", "string", "html", [], False),
            (
                "hs_call_direction",
                "Call direction",
                "enumeration",
                "select",
                _options("INBOUND", "OUTBOUND"),
                False,
            ),
            ("hs_call_disposition", "Call outcome", "string", "text", [], False),
            (
                "hs_call_status",
                "Call status",
                "enumeration",
                "select",
                _options(
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "CONNECTING",
                    "FAILED",
                    "IN_PROGRESS",
                    "NO_ANSWER",
                    "QUEUED",
                    "RINGING",
                ),
                False,
            ),
        ],
        "meetings": [
            ts,
            owner,
            ("hs_meeting_title", "Meeting name", "string", "text", [], False),
            ("hs_meeting_body", "Meeting description", "string", "html", [], False),
            (
                "hs_meeting_outcome",
                "Meeting outcome",
                "enumeration",
                "select",
                _options("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
                False,
            ),
            ("hs_meeting_start_time", "Start Time", "datetime", "date", [], False),
            ("hs_meeting_end_time", "End Time", "datetime", "date", [], False),
        ],
        "emails": [
            ts,
            owner,
            ("hs_email_subject", "Email subject", "string", "text", [], False),
            ("hs_email_text", "Email body", "string", "textarea", [], False),
            ("hs_email_html", "Email HTML body", "string", "html", [], False),
            (
                "hs_email_direction",
                "Email direction",
                "enumeration",
                "select",
                _options("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
                False,
            ),
            (
                "hs_email_status",
                "Email send status",
                "enumeration",
                "select",
                _options("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
                False,
            ),
        ],
        "notes": [ts, owner, ("hs_note_body", "Note body", "string", "html", [], False)],
        "tasks": [
            ts,
            owner,
            ("hs_task_subject", "Task Title", "string", "text", [], False),
            ("hs_task_body", "Task notes", "string", "html", [], False),
            (
                "hs_task_status",
                "Task Status",
                "enumeration",
                "select",
                _options("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
                False,
            ),
            (
                "hs_task_priority",
                "Priority",
                "enumeration",
                "select",
                _options("NONE", "LOW", "MEDIUM", "HIGH"),
                False,
            ),
            ("hs_task_type", "Task Type", "enumeration", "select", _options("TODO", "CALL", "EMAIL"), False),
        ],
    }
    for options in (lifecycle, stages, freq):
        for opt in options:
            opt["label"] = opt["value"]
    return {t: own[t] + system[t] for t in OBJECT_TYPES}


_CUSTOM = {
    ("companies", n)
    for n in ("seats_purchased", "seats_active", "nps_score", "onboarding_stage", "do_not_contact")
} | {("products", "family"), ("products", "tier")}


# ---- store --------------------------------------------------------------------------------------------
