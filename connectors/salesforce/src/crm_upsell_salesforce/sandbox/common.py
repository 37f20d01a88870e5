"""Constants, id and datetime helpers and error bodies every part of the Salesforce sandbox shares."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

from crm_upsell_salesforce.sandbox.soql_parse import (
    id15_to_18,
)

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Product2": "01t",
    "PricebookEntry": "01u",
    "Asset": "02i",
    "Task": "00T",
    "Event": "00U",
    "User": "005",
    # Marketing (Object Reference "Campaign", "CampaignMember"; see sandbox/marketing.py).
    "Campaign": "701",
    "CampaignMember": "00v",
    # Setup objects behind field-level security (Object Reference: PermissionSet, FieldPermissions,
    # PermissionSetAssignment; https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
    # object_reference/sforce_api_objects_fieldpermissions.htm).
    "PermissionSet": "0PS",
    "FieldPermissions": "01k",
    "PermissionSetAssignment": "0Pa",
    # Multi-currency (Object Reference "CurrencyType", "DatedConversionRate", "Organization").
    "CurrencyType": "02c",
    "DatedConversionRate": "04w",
    "Organization": "00D",
}
#: Setup objects that hold currencies and the organization itself.
CURRENCY_OBJECTS = frozenset({"CurrencyType", "DatedConversionRate", "Organization"})
#: Currencies without a minor unit (ISO 4217 exponent 0): their CurrencyType has DecimalPlaces 0.
WHOLE_UNIT_CURRENCIES = frozenset({"JPY", "KRW"})
#: Objects whose records are setup (metadata-like) rather than data: no field-level security applies.
SETUP_OBJECTS = frozenset({"PermissionSet", "FieldPermissions", "PermissionSetAssignment"})
OBJECTS: tuple[str, ...] = tuple(KEY_PREFIXES)
TOOLING_PREFIX = {"CustomField": "00N"}
PRICEBOOK_PREFIX = "01s"
ORG_PREFIX = "00D"
LOCATOR_PREFIX = "01g"

BATCH_SIZE = 2000
MIN_BATCH = 200
COLLECTION_MAX = 200
MAX_CURSORS = 500
DELETED_WINDOW_MS = 15 * 86_400_000
ARCHIVE_AFTER_DAYS = (
    365  # Salesforce Help, "Archived Activities": events and closed tasks older than 365 days
)
API_VERSIONS = {
    "55.0": "Summer '22",
    "56.0": "Winter '23",
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}
VERSION = re.compile(r"v(\d{2})\.0")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
DAY = 86_400_000

INDUSTRIES = {
    "COMPUTER_SOFTWARE": "Technology",
    "RETAIL": "Retail",
    "HOSPITAL_HEALTH_CARE": "Healthcare",
    "FINANCIAL_SERVICES": "Finance",
    "MANUFACTURING": "Manufacturing",
    "MARKETING_AND_ADVERTISING": "Media",
    "LOGISTICS_AND_SUPPLY_CHAIN": "Transportation",
    "EDUCATION_MANAGEMENT": "Education",
    "CONSTRUCTION": "Construction",
    "FOOD_BEVERAGES": "Food & Beverage",
    "REAL_ESTATE": "Other",
    "TELECOMMUNICATIONS": "Telecommunications",
}
STAGES = {
    "appointmentscheduled": "Prospecting",
    "qualifiedtobuy": "Qualification",
    "presentationscheduled": "Value Proposition",
    "decisionmakerboughtin": "Id. Decision Makers",
    "contractsent": "Negotiation/Review",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}
PROBABILITY = {
    "Prospecting": 10.0,
    "Qualification": 20.0,
    "Needs Analysis": 20.0,
    "Value Proposition": 50.0,
    "Id. Decision Makers": 60.0,
    "Perception Analysis": 70.0,
    "Proposal/Price Quote": 75.0,
    "Negotiation/Review": 90.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}
DISPOSITIONS = {
    "connected": "Connected",
    "complaint": "Connected",
    "no_answer": "No Answer",
    "left_voicemail": "Left Voicemail",
    "busy": "Busy",
    "wrong_number": "Wrong Number",
}
MEETING_OUTCOMES = {
    "completed": "Completed",
    "scheduled": "Scheduled",
    "no_show": "No Show",
    "canceled": "Canceled",
    "rescheduled": "Rescheduled",
}
TASK_SUBTYPE = {"call": "Call", "email": "Email", "note": "Task", "task": "Task"}
TASK_TYPE = {"call": "Call", "email": "Email", "note": "Note", "task": "Other"}
PRIORITIES = ("High", "Normal", "Normal", "Low")
PERIODS = {"P12M": "Annual", "P1M": "Monthly"}
STRINGY = frozenset({"string", "textarea", "picklist", "email", "url", "phone", "combobox"})
NUMERIC = frozenset({"double", "currency", "percent", "int"})
MODSTAMP_FIELDS = frozenset({"SystemModstamp", "LastModifiedDate"})


# ---- small helpers ------------------------------------------------------------------------------------


def to_ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def sf_datetime(ms: int) -> str:
    """Epoch milliseconds as Salesforce writes datetimes: ``2026-01-01T00:00:00.000+0000``."""
    # Formatted by hand: strftime is the hot spot when a page renders thousands of stamps.
    d = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{ms % 1000:03d}+0000"
    )


def sf_date(ms: int) -> str:
    d = _EPOCH + timedelta(milliseconds=ms)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _BASE62[r] + out
    return out.rjust(width, "0")


def make_id(prefix: str, n: int) -> str:
    """The ``n``-th 18-character id with key ``prefix``; ids sort in creation order."""
    return id15_to_18(f"{prefix}5g0000{_base62(n, 6)}")


def _error_list(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return [item]


def error_response(status: int, code: str, message: str, fields: list[str] | None = None) -> JSONResponse:
    return JSONResponse(_error_list(code, message, fields), status_code=status)


class Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message)


def label_of(name: str) -> str:
    if name.endswith("__c"):
        return name[:-3].replace("_", " ").strip().title()
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.removesuffix("Id") or name)


def record_error(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}
