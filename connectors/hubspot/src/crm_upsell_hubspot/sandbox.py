"""A HubSpot API emulator (CRM v3 objects, search, v4 associations, properties, owners, OAuth) over a scenario.

Request and response shapes follow HubSpot's public OpenAPI descriptions: numeric string ids, string
property values, ISO-8601 timestamps with milliseconds, the ``X-HubSpot-RateLimit-*`` headers, the error
bodies, 207 multi-status batches and the 10,000-result search cap. The store is in memory and indexed so
a search page sorted by ``hs_lastmodifieddate`` costs O(log n + page).
"""

from __future__ import annotations

import bisect
import fnmatch
import gc
import json
import math
import re
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.scenario import (
    SActivity,
    Scenario,
    SCompany,
    SContact,
    SLineItem,
    SProduct,
)
from crm_upsell_connector.sandbox.server import (
    DroppedResponse,
    LatencyMiddleware,
    LimitDecision,
    SandboxOptions,
    SandboxRuntime,
    control_routes,
    iso_ms,
)

__all__ = [
    "ASSOCIATION_TYPES",
    "OBJECT_TYPES",
    "HubSpotSandbox",
    "archive",
    "create_app",
    "hubspot_id",
    "sandbox_state",
    "set_properties",
    "touch",
]

OBJECT_TYPES: tuple[str, ...] = (
    "companies",
    "contacts",
    "deals",
    "line_items",
    "products",
    "calls",
    "meetings",
    "emails",
    "notes",
    "tasks",
)
ACTIVITY_TYPES: tuple[str, ...] = ("calls", "meetings", "emails", "notes", "tasks")
_KIND_TO_TYPE = {"call": "calls", "meeting": "meetings", "email": "emails", "note": "notes", "task": "tasks"}
_SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "line_items": "line_item",
    "products": "product",
    "calls": "call",
    "meetings": "meeting",
    "emails": "email",
    "notes": "note",
    "tasks": "task",
}
_TYPE_IDS = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-7": "products",
    "0-8": "line_items",
    "0-27": "tasks",
    "0-46": "notes",
    "0-47": "meetings",
    "0-48": "calls",
    "0-49": "emails",
}
_ALIASES: dict[str, str] = {
    **{t: t for t in OBJECT_TYPES},
    **{s: t for t, s in _SINGULAR.items()},
    **_TYPE_IDS,
    "lineitems": "line_items",
}

# HubSpot-defined association type ids: (from, to) -> [(typeId, label)]; the unlabeled type first.
ASSOCIATION_TYPES: dict[tuple[str, str], list[tuple[int, str | None]]] = {
    ("contacts", "companies"): [(279, None), (1, "Primary")],
    ("companies", "contacts"): [(280, None), (2, "Primary")],
    ("deals", "companies"): [(341, None), (5, "Primary")],
    ("companies", "deals"): [(342, None), (6, "Primary")],
    ("deals", "contacts"): [(3, None)],
    ("contacts", "deals"): [(4, None)],
    ("line_items", "deals"): [(20, None)],
    ("deals", "line_items"): [(19, None)],
    ("calls", "companies"): [(182, None)],
    ("companies", "calls"): [(181, None)],
    ("emails", "companies"): [(186, None)],
    ("companies", "emails"): [(185, None)],
    ("meetings", "companies"): [(188, None)],
    ("companies", "meetings"): [(187, None)],
    ("notes", "companies"): [(190, None)],
    ("companies", "notes"): [(189, None)],
    ("tasks", "companies"): [(192, None)],
    ("companies", "tasks"): [(191, None)],
    ("calls", "contacts"): [(194, None)],
    ("contacts", "calls"): [(193, None)],
    ("emails", "contacts"): [(198, None)],
    ("contacts", "emails"): [(197, None)],
    ("meetings", "contacts"): [(200, None)],
    ("contacts", "meetings"): [(199, None)],
    ("notes", "contacts"): [(202, None)],
    ("contacts", "notes"): [(201, None)],
    ("tasks", "contacts"): [(204, None)],
    ("contacts", "tasks"): [(203, None)],
}
_TYPE_BY_ASSOC_ID: dict[tuple[str, int], str] = {
    (f, tid): t for (f, t), types in ASSOCIATION_TYPES.items() for tid, _ in types
}

# HubSpot's documented call disposition GUIDs; a complaint is a connected call (marker kept in the title).
CALL_DISPOSITIONS = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "left_voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "left_live_message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",
    "wrong_number": "17b47fee-58de-441e-a44c-c6300d46f273",
    "complaint": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
}
_MEETING_OUTCOMES = {
    "completed": "COMPLETED",
    "scheduled": "SCHEDULED",
    "no_show": "NO_SHOW",
    "canceled": "CANCELED",
    "rescheduled": "RESCHEDULED",
}
_PRIORITIES = ("HIGH", "MEDIUM", "MEDIUM", "LOW", "NONE")

_MODIFIED_PROPS: dict[str, tuple[str, ...]] = {
    t: ("lastmodifieddate", "hs_lastmodifieddate") if t == "contacts" else ("hs_lastmodifieddate",)
    for t in OBJECT_TYPES
}
_CREATED_PROP = {t: "hs_createdate" if t in ACTIVITY_TYPES else "createdate" for t in OBJECT_TYPES}
_DEFAULT_PROPS: dict[str, tuple[str, ...]] = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "line_items": (
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_product_id",
        "name",
        "price",
        "quantity",
    ),
    "products": ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
    **{t: ("hs_createdate", "hs_lastmodifieddate", "hs_object_id") for t in ACTIVITY_TYPES},
}
_QUERY_PROPS: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain"),
    "contacts": ("firstname", "lastname", "email"),
    "deals": ("dealname",),
    "products": ("name", "hs_sku"),
    "line_items": ("name",),
    "calls": ("hs_call_title", "hs_call_body"),
    "meetings": ("hs_meeting_title",),
    "emails": ("hs_email_subject",),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject",),
}
_ID_BASE = {
    "companies": 18_000_000_000,
    "contacts": 100_000,
    "deals": 9_000_000_000,
    "line_items": 7_000_000_000,
    "products": 1_500_000,
    "activities": 40_000_000_000,
}
_BATCH_MAX = 100
_ASSOC_BATCH_MAX = 1000
_SEARCH_LIMIT_MAX = 200
_LIST_LIMIT_MAX = 100
_OWNER_LIMIT_MAX = 500
_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TOKEN_SPLIT = re.compile(r"[^\w@.'-]+")


# ---- small helpers ------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return iso_ms((value - _EPOCH) // _MS)


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _num(value: float | int) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _parse_time(raw: str) -> int | None:
    """Epoch milliseconds from a HubSpot filter/property value (epoch ms, ISO-8601 or a date)."""
    text = raw.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status)


class _HTTPError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(getattr(response, "status_code", 400))
        self.response = response


def _bad(message: str, category: str = "VALIDATION_ERROR", status: int = 400, **extra: Any) -> _HTTPError:
    return _HTTPError(_error(status, message, category, **extra))


def _std_error(
    category: str, message: str, context: dict[str, list[str]], sub_category: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }
    if sub_category:
        item["subCategory"] = sub_category
    return item


# ---- property definitions -------------------------------------------------------------------------------


def _options(*values: str) -> list[dict[str, Any]]:
    return [
        {"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
        for i, v in enumerate(values)
    ]


# name, label, type, fieldType, options, read-only value
_P = tuple[str, str, str, str, list[dict[str, Any]], bool]


def _standard_properties() -> dict[str, list[_P]]:
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
        ],
        "contacts": [
            ("email", "Email", "string", "text", [], False),
            ("firstname", "First Name", "string", "text", [], False),
            ("lastname", "Last Name", "string", "text", [], False),
            ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", lifecycle, False),
            ("associatedcompanyid", "Primary Associated Company ID", "number", "number", [], False),
            owner,
        ],
        "deals": [
            ("dealname", "Deal Name", "string", "text", [], False),
            ("dealstage", "Deal Stage", "enumeration", "radio", stages, False),
            ("pipeline", "Pipeline", "enumeration", "select", _options("default"), False),
            ("amount", "Amount", "number", "number", [], False),
            ("closedate", "Close Date", "datetime", "date", [], False),
            ("deal_currency_code", "Currency", "enumeration", "select", [], False),
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


class Rec:
    """One CRM record: its scenario source (or None when created through the API) plus overrides."""

    __slots__ = ("archived_ms", "created_ms", "id", "props", "src", "updated_ms")

    def __init__(self, id_: int, src: object | None, created_ms: int, updated_ms: int) -> None:
        self.id = id_
        self.src = src
        self.props: dict[str, str | None] | None = None
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived_ms: int | None = None


@dataclass
class Table:
    """Records of one object type with a sorted id list and a sorted (modified, id) index."""

    name: str
    recs: dict[int, Rec] = field(default_factory=dict)
    active: list[int] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)
    modified: list[tuple[int, int]] = field(default_factory=list)

    def add(self, rec: Rec) -> None:
        self.recs[rec.id] = rec
        if self.active and rec.id < self.active[-1]:
            bisect.insort(self.active, rec.id)
        else:
            self.active.append(rec.id)
        bisect.insort(self.modified, (rec.updated_ms, rec.id))

    def get(self, id_: int) -> Rec | None:
        rec = self.recs.get(id_)
        return rec if rec is not None and rec.archived_ms is None else None

    def touch(self, rec: Rec, ms: int) -> None:
        if rec.archived_ms is None:
            i = bisect.bisect_left(self.modified, (rec.updated_ms, rec.id))
            if i < len(self.modified) and self.modified[i] == (rec.updated_ms, rec.id):
                del self.modified[i]
            bisect.insort(self.modified, (ms, rec.id))
        rec.updated_ms = ms

    def archive(self, rec: Rec, ms: int) -> None:
        if rec.archived_ms is not None:
            return
        i = bisect.bisect_left(self.modified, (rec.updated_ms, rec.id))
        if i < len(self.modified) and self.modified[i] == (rec.updated_ms, rec.id):
            del self.modified[i]
        j = bisect.bisect_left(self.active, rec.id)
        if j < len(self.active) and self.active[j] == rec.id:
            del self.active[j]
        bisect.insort(self.archived, rec.id)
        rec.archived_ms = ms
        rec.updated_ms = ms


@dataclass(frozen=True, slots=True)
class _Filter:
    prop: str
    op: str
    value: str | None
    values: tuple[str, ...]
    high: str | None


@dataclass(frozen=True, slots=True)
class _Sort:
    prop: str
    desc: bool


Getter = Callable[[Any], str | None]
Handler = Callable[[Request, Any], Response]


class HubSpotSandbox:
    """The state of one emulated HubSpot portal and the logic behind every route."""

    def __init__(self, scenario: Scenario, options: SandboxOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.runtime = SandboxRuntime(options, not_before=scenario.now)
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {t: Table(t) for t in OBJECT_TYPES}
        self.assoc: dict[tuple[str, str], dict[int, list[int]]] = {pair: {} for pair in ASSOCIATION_TYPES}
        self.ids: dict[str, int] = {}
        self.owner_ids: dict[str, int] = {}
        self.tokens: dict[str, int] = {}  # issued OAuth access token -> expiry (sandbox ms)
        self.shuffle_batch_results = True
        self._next_id = dict(_ID_BASE)
        self.properties: dict[str, dict[str, dict[str, Any]]] = {}
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}
        self._getters: dict[str, dict[str, Getter]] = {}
        self._init_properties()
        # Hundreds of thousands of small objects: the cyclic GC would rescan them over and over.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load(scenario)
        finally:
            if gc_was_enabled:
                gc.enable()
        self._init_getters()

    # -- loading

    def _new_id(self, bucket: str) -> int:
        self._next_id[bucket] += 1
        return self._next_id[bucket]

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        self.assoc[(from_type, to_type)].setdefault(from_id, []).append(to_id)
        self.assoc[(to_type, from_type)].setdefault(to_id, []).append(from_id)

    def _load(self, sc: Scenario) -> None:
        now = _ms(sc.now)
        for i, owner in enumerate(sc.owners):
            self.owner_ids[owner.key] = 70_000_001 + i * 37
        for product in sc.products:
            pid = self._new_id("products")
            self.ids[product.key] = pid
            self.tables["products"].recs[pid] = Rec(
                pid, product, now - 5 * 365 * 86_400_000, now - 200 * 86_400_000
            )
        for company in sc.companies:
            cid = self._new_id("companies")
            self.ids[company.key] = cid
            self.tables["companies"].recs[cid] = Rec(
                cid, company, _ms(company.created_at), _ms(company.updated_at)
            )
        for contact in sc.contacts:
            xid = self._new_id("contacts")
            self.ids[contact.key] = xid
            self.tables["contacts"].recs[xid] = Rec(
                xid, contact, _ms(contact.created_at), _ms(contact.updated_at)
            )
            self._link("contacts", xid, "companies", self.ids[contact.company_key])
        deal_created: dict[str, int] = {}
        for deal in sc.deals:
            did = self._new_id("deals")
            self.ids[deal.key] = did
            deal_created[deal.key] = _ms(deal.created_at)
            self.tables["deals"].recs[did] = Rec(did, deal, _ms(deal.created_at), _ms(deal.updated_at))
            self._link("deals", did, "companies", self.ids[deal.company_key])
        for item in sc.line_items:
            lid = self._new_id("line_items")
            self.ids[item.key] = lid
            updated = _ms(item.updated_at)
            self.tables["line_items"].recs[lid] = Rec(
                lid, item, min(deal_created[item.deal_key], updated), updated
            )
            self._link("line_items", lid, "deals", self.ids[item.deal_key])
        for act in sc.activities:
            aid = self._new_id("activities")
            self.ids[act.key] = aid
            kind = _KIND_TO_TYPE[act.kind]
            updated = _ms(act.updated_at)
            self.tables[kind].recs[aid] = Rec(aid, act, min(_ms(act.occurred_at), updated), updated)
            self._link(kind, aid, "companies", self.ids[act.company_key])
            if act.contact_key is not None:
                self._link(kind, aid, "contacts", self.ids[act.contact_key])
        for table in self.tables.values():
            table.active = sorted(table.recs)
            table.modified = sorted((r.updated_ms, r.id) for r in table.recs.values())

    def _init_properties(self) -> None:
        for otype, props in _standard_properties().items():
            group = f"{_SINGULAR[otype]}information"
            self.groups[otype] = {
                group: {
                    "name": group,
                    "label": f"{_SINGULAR[otype].title()} information",
                    "displayOrder": -1,
                    "archived": False,
                }
            }
            defs: dict[str, dict[str, Any]] = {}
            for order, (name, label, ptype, field_type, opts, read_only) in enumerate(props):
                defs[name] = self._property_json(
                    otype,
                    name,
                    label,
                    ptype,
                    field_type,
                    group,
                    opts,
                    order,
                    hubspot_defined=(otype, name) not in _CUSTOM,
                    read_only=read_only,
                )
            self.properties[otype] = defs

    def _property_json(
        self,
        otype: str,
        name: str,
        label: str,
        ptype: str,
        field_type: str,
        group: str,
        options: list[dict[str, Any]],
        order: int,
        *,
        hubspot_defined: bool,
        read_only: bool = False,
        description: str = "",
        has_unique_value: bool = False,
    ) -> dict[str, Any]:
        stamp = iso_ms(_ms(self.scenario.now) - 900 * 86_400_000)
        prop: dict[str, Any] = {
            "name": name,
            "label": label,
            "type": ptype,
            "fieldType": field_type,
            "description": description,
            "groupName": group,
            "options": options,
            "displayOrder": order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": has_unique_value,
            "hidden": False,
            "formField": not read_only,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "modificationMetadata": {
                "archivable": not hubspot_defined,
                "readOnlyDefinition": hubspot_defined,
                "readOnlyValue": read_only,
            },
        }
        if hubspot_defined:
            prop["hubspotDefined"] = True
        return prop

    def _init_getters(self) -> None:
        oid, ids = self.owner_ids, self.ids

        def owner(src: Any) -> str:
            return str(oid[src.owner_key])

        def company_owner(src: SContact) -> str | None:
            company = self._company_src(src.company_key)
            return str(oid[company.owner_key]) if company is not None else None

        def opt_num(value: int | None) -> str | None:
            return None if value is None else str(value)

        def product(src: SLineItem) -> SProduct:
            return self._products[src.product_key]

        self._products = {p.key: p for p in self.scenario.products}
        self._companies = {c.key: c for c in self.scenario.companies}
        companies: dict[str, Getter] = {
            "name": lambda s: s.name,
            "domain": lambda s: s.domain,
            "industry": lambda s: s.industry,
            "lifecyclestage": lambda s: s.lifecycle_stage,
            "hubspot_owner_id": owner,
            "seats_purchased": lambda s: opt_num(s.seats_purchased),
            "seats_active": lambda s: opt_num(s.seats_active),
            "nps_score": lambda s: opt_num(s.nps_score),
            "onboarding_stage": lambda s: s.onboarding_stage,
            "do_not_contact": lambda s: "true" if s.do_not_contact else "false",
        }
        contacts: dict[str, Getter] = {
            "email": lambda s: s.email,
            "firstname": lambda s: s.first_name,
            "lastname": lambda s: s.last_name,
            "lifecyclestage": lambda s: s.lifecycle_stage,
            "hubspot_owner_id": company_owner,
            "associatedcompanyid": lambda s: str(ids[s.company_key]),
        }
        deals: dict[str, Getter] = {
            "dealname": lambda s: s.name,
            "dealstage": lambda s: s.stage,
            "pipeline": lambda s: "default",
            "amount": lambda s: _num(s.amount),
            "closedate": lambda s: _iso(s.close_date),
            "deal_currency_code": lambda s: "USD",
            "hubspot_owner_id": owner,
            "hs_is_closed": lambda s: "true" if s.stage in ("closedwon", "closedlost") else "false",
            "hs_is_closed_won": lambda s: "true" if s.stage == "closedwon" else "false",
        }
        line_items: dict[str, Getter] = {
            "name": lambda s: product(s).name,
            "hs_product_id": lambda s: str(ids[s.product_key]),
            "hs_sku": lambda s: product(s).sku,
            "quantity": lambda s: str(s.quantity),
            "price": lambda s: _num(s.unit_price),
            "amount": lambda s: _num(s.unit_price * s.quantity),
            "recurringbillingfrequency": lambda s: "annually" if s.billing_period == "P12M" else "monthly",
            "hs_recurring_billing_period": lambda s: s.billing_period,
        }
        products: dict[str, Getter] = {
            "name": lambda s: s.name,
            "hs_sku": lambda s: s.sku,
            "price": lambda s: _num(s.unit_price),
            "description": lambda s: f"{s.name} ({s.family}, tier {s.tier})",
            "recurringbillingfrequency": lambda s: "monthly",
            "family": lambda s: s.family,
            "tier": lambda s: str(s.tier),
        }

        def when(s: SActivity) -> str:
            return _iso(s.occurred_at)

        common: dict[str, Getter] = {"hs_timestamp": when, "hubspot_owner_id": owner}
        calls: dict[str, Getter] = {
            **common,
            "hs_call_title": lambda s: s.subject,
            "hs_call_body": lambda s: s.body,
            "hs_call_direction": lambda s: (s.direction or "outbound").upper(),
            "hs_call_disposition": lambda s: CALL_DISPOSITIONS.get(
                s.outcome or "", CALL_DISPOSITIONS["connected"]
            ),
            "hs_call_status": lambda s: "COMPLETED",
        }
        meetings: dict[str, Getter] = {
            **common,
            "hs_meeting_title": lambda s: s.subject,
            "hs_meeting_body": lambda s: s.body,
            "hs_meeting_outcome": lambda s: _MEETING_OUTCOMES.get(s.outcome or "", "COMPLETED"),
            "hs_meeting_start_time": when,
            "hs_meeting_end_time": lambda s: _iso(s.occurred_at + timedelta(minutes=30)),
        }
        emails: dict[str, Getter] = {
            **common,
            "hs_email_subject": lambda s: s.subject,
            "hs_email_text": lambda s: s.body,
            "hs_email_direction": lambda s: "INCOMING_EMAIL" if s.direction == "inbound" else "EMAIL",
            "hs_email_status": lambda s: "SENT",
        }
        notes: dict[str, Getter] = {
            **common,
            "hs_note_body": lambda s: f"<p><strong>{s.subject}</strong></p><p>{s.body}</p>",
        }
        tasks: dict[str, Getter] = {
            **common,
            "hs_task_subject": lambda s: s.subject,
            "hs_task_body": lambda s: s.body,
            "hs_task_status": lambda s: s.status or "NOT_STARTED",
            "hs_task_priority": lambda s: _PRIORITIES[int(s.key[-3:]) % len(_PRIORITIES)],
            "hs_task_type": lambda s: "TODO",
        }
        self._getters = {
            "companies": companies,
            "contacts": contacts,
            "deals": deals,
            "line_items": line_items,
            "products": products,
            "calls": calls,
            "meetings": meetings,
            "emails": emails,
            "notes": notes,
            "tasks": tasks,
        }

    def _company_src(self, key: str) -> SCompany | None:
        return self._companies.get(key)

    # -- reading records

    def value(self, otype: str, rec: Rec, prop: str) -> str | None:
        """One property value as HubSpot would return it."""
        if rec.props is not None and prop in rec.props:
            return rec.props[prop]
        if prop == "hs_object_id":
            return str(rec.id)
        if prop in _MODIFIED_PROPS[otype]:
            return iso_ms(rec.updated_ms)
        if prop == _CREATED_PROP[otype]:
            return iso_ms(rec.created_ms)
        getter = self._getters[otype].get(prop)
        if getter is None or rec.src is None:
            return None
        return getter(rec.src)

    def public(
        self, otype: str, rec: Rec, props: Sequence[str] | None, associations: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The SimplePublicObject(WithAssociations) shape of one record."""
        defs = self.properties[otype]
        if props:
            names = [
                p
                for p in dict.fromkeys(
                    (*props, "hs_object_id", _CREATED_PROP[otype], _MODIFIED_PROPS[otype][0])
                )
                if p in defs
            ]
        else:
            names = list(_DEFAULT_PROPS[otype])
        out: dict[str, Any] = {
            "id": str(rec.id),
            "properties": {name: self.value(otype, rec, name) for name in names},
            "createdAt": iso_ms(rec.created_ms),
            "updatedAt": iso_ms(rec.updated_ms),
            "archived": rec.archived_ms is not None,
        }
        if rec.archived_ms is not None:
            out["archivedAt"] = iso_ms(rec.archived_ms)
        if associations:
            assoc: dict[str, Any] = {}
            for to_type in associations:
                block = self._inline_associations(otype, rec.id, to_type)
                if block:
                    assoc[to_type] = {"results": block}
            if assoc:
                out["associations"] = assoc
        return out

    def _inline_associations(self, otype: str, id_: int, to_type: str) -> list[dict[str, str]]:
        targets = self.assoc.get((otype, to_type), {}).get(id_, [])
        table = self.tables[to_type]
        base = f"{_SINGULAR[otype]}_to_{_SINGULAR[to_type]}"
        labelled = len(ASSOCIATION_TYPES[(otype, to_type)]) > 1
        results: list[dict[str, str]] = []
        for tid in targets:
            if table.get(tid) is None:
                continue
            if labelled:  # HubSpot lists the primary and the unlabeled association separately
                results.append({"id": str(tid), "type": base})
                results.append({"id": str(tid), "type": f"{base}_unlabeled"})
            else:
                results.append({"id": str(tid), "type": base})
        return results

    # -- writing records

    def _coerce_write(self, otype: str, name: str, raw: Any) -> tuple[str | None, dict[str, Any] | None]:
        """The stored form of a written value, or an error descriptor."""
        prop = self.properties[otype].get(name)
        if prop is None:
            return None, {
                "error": "PROPERTY_DOESNT_EXIST",
                "name": name,
                "message": f'Property "{name}" does not exist',
            }
        if prop["modificationMetadata"]["readOnlyValue"]:
            return None, {
                "error": "READ_ONLY_VALUE",
                "name": name,
                "message": f'"{name}" is a read only property; its value cannot be set.',
            }
        if raw is None:
            return None, None
        text = (
            raw
            if isinstance(raw, str)
            else json.dumps(raw)
            if not isinstance(raw, bool | int | float)
            else (str(raw).lower() if isinstance(raw, bool) else _num(raw))
        )
        if text == "":
            return "", None
        ptype = prop["type"]
        if ptype == "number":
            try:
                float(text)
            except ValueError:
                return None, {
                    "error": "INVALID_LONG" if "." not in text else "INVALID_DOUBLE",
                    "name": name,
                    "message": f"{text} was not a valid number.",
                }
        elif ptype == "bool":
            if text.lower() not in ("true", "false"):
                return None, {
                    "error": "INVALID_BOOLEAN",
                    "name": name,
                    "message": f"{text} was not a valid boolean.",
                }
            text = text.lower()
        elif ptype in ("datetime", "date"):
            ms = _parse_time(text)
            if ms is None:
                return None, {
                    "error": "INVALID_DATE",
                    "name": name,
                    "message": f"{text} was not a valid date or datetime.",
                }
            text = iso_ms(ms) if ptype == "datetime" else iso_ms(ms)[:10]
        elif ptype == "enumeration" and prop["options"]:
            allowed = {o["value"] for o in prop["options"]}
            chosen = text.split(";") if prop["fieldType"] == "checkbox" else [text]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                return None, {
                    "error": "INVALID_OPTION",
                    "name": name,
                    "message": f"{bad[0]} was not one of the allowed options: {sorted(allowed)}",
                }
        return text, None

    def _validate_properties(self, otype: str, properties: Any) -> dict[str, str | None]:
        if not isinstance(properties, dict):
            raise _bad("Invalid input JSON: 'properties' must be an object.")
        clean: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        for name, raw in properties.items():
            value, problem = self._coerce_write(otype, str(name), raw)
            if problem is not None:
                problems.append(problem)
            else:
                clean[str(name)] = value
        if problems:
            details = [
                {
                    "isValid": False,
                    "message": p["message"],
                    "error": p["error"],
                    "name": p["name"],
                    "localizedErrorMessage": p["message"],
                }
                for p in problems
            ]
            raise _bad(
                f"Property values were not valid: {json.dumps(details)}",
                errors=[
                    {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                    for p in problems
                ],
            )
        return clean

    def _apply(self, otype: str, rec: Rec, values: dict[str, str | None], now: int) -> bool:
        changed = False
        for name, value in values.items():
            if self.value(otype, rec, name) != value:
                if rec.props is None:
                    rec.props = {}
                rec.props[name] = value
                changed = True
        if changed:
            self.tables[otype].touch(rec, now)
        return changed

    # -- public helpers for tests (in-process) and /__sandbox routes

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def touch(
        self,
        otype: str = "companies",
        count: int | None = None,
        ids: Iterable[str] | None = None,
        *,
        same_ms: bool = True,
    ) -> list[str]:
        """Mark records modified now (all at the same millisecond unless ``same_ms`` is False)."""
        otype = _normalize_type(otype)
        with self.lock:
            table = self.tables[otype]
            chosen = [int(i) for i in ids] if ids is not None else list(table.active[: count or 0])
            now = self.now_ms()
            done: list[str] = []
            for n, id_ in enumerate(chosen):
                rec = table.get(id_)
                if rec is None:
                    continue
                table.touch(rec, now if same_ms else now + n)
                done.append(str(id_))
            return done

    def archive(self, otype: str, ids: Iterable[str]) -> list[str]:
        otype = _normalize_type(otype)
        with self.lock:
            table = self.tables[otype]
            now = self.now_ms()
            done: list[str] = []
            for raw in ids:
                rec = table.get(int(raw))
                if rec is not None:
                    table.archive(rec, now)
                    done.append(str(rec.id))
            return done

    def set_properties(self, otype: str, id_: str, properties: dict[str, str | None]) -> dict[str, Any]:
        """Set properties on one record, bypassing read-only checks (like a user editing in the UI)."""
        otype = _normalize_type(otype)
        with self.lock:
            rec = self.tables[otype].get(int(id_))
            if rec is None:
                raise KeyError(f"{otype}/{id_}")
            unknown = sorted(set(properties) - set(self.properties[otype]))
            if unknown:
                raise KeyError(f"{otype} has no properties {unknown}")
            self._apply(otype, rec, dict(properties), self.now_ms())
            return self.public(otype, rec, list(properties))

    def hubspot_id(self, key: str) -> str:
        """The HubSpot id of a scenario record (company, contact, deal... key) or owner key."""
        if key in self.owner_ids:
            return str(self.owner_ids[key])
        return str(self.ids[key])

    def planted(self) -> dict[str, str]:
        return {str(self.ids[key]): persona for key, persona in self.scenario.planted.items()}

    # -- auth

    def authenticate(self, request: Request) -> tuple[Response | None, bool]:
        """(error response or None, whether the caller is a private app with a daily limit)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), False
        if secrets.compare_digest(token, self.options.token):
            return None, True
        expiry = self.tokens.get(token)
        if expiry is None:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), False
        now = self.now_ms()
        if now >= expiry:
            ago = max(1, (now - expiry) // 1000)
            return _error(
                401,
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
                context={"expiredAt": [iso_ms(expiry)]},
            ), False
        return None, False

    def issue_token(self, form: dict[str, str]) -> Response:
        def oauth_error(status: str, message: str) -> Response:
            return JSONResponse(
                {"status": status, "message": message, "correlationId": str(uuid.uuid4())}, status_code=400
            )

        grant = form.get("grant_type")
        if grant != "refresh_token":
            return oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token in this sandbox")
        if form.get("client_id") != self.options.client_id:
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.options.client_secret:
            return oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if form.get("refresh_token") != self.options.refresh_token:
            return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        token = f"sbx-{secrets.token_hex(24)}"
        with self.lock:
            self.tokens[token] = self.now_ms() + self.options.access_token_ttl_s * 1000
        return JSONResponse(
            {
                "token_type": "bearer",
                "refresh_token": self.options.refresh_token,
                "access_token": token,
                "expires_in": self.options.access_token_ttl_s,
                "token_use": "access_token",
                "hub_id": 4_000_001,
                "scopes": [
                    "oauth",
                    "crm.objects.companies.read",
                    "crm.objects.companies.write",
                    "crm.objects.contacts.read",
                    "crm.objects.deals.read",
                    "crm.objects.line_items.read",
                    "crm.schemas.companies.write",
                    "crm.objects.owners.read",
                ],
            }
        )

    def expire_tokens(self) -> int:
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)

    # -- object routes

    def _table(self, raw: str) -> tuple[str, Table]:
        otype = _ALIASES.get(raw)
        if otype is None:
            raise _bad(f"Unable to infer object type from: {raw}", status=400)
        return otype, self.tables[otype]

    def _props_param(self, request: Request, name: str) -> list[str]:
        values: list[str] = []
        for raw in request.query_params.getlist(name):
            values.extend(p.strip() for p in raw.split(",") if p.strip())
        return values

    def list_objects(self, request: Request, otype_raw: str) -> Response:
        otype, table = self._table(otype_raw)
        q = request.query_params
        limit = _int_param(q.get("limit"), 10, "limit")
        limit = max(1, min(limit, _LIST_LIMIT_MAX))
        after_raw = q.get("after")
        start = 0
        if after_raw:
            if not after_raw.isdigit():
                raise _bad(f"Invalid paging cursor: {after_raw}")
            start = int(after_raw)
        archived = (q.get("archived") or "false").lower() == "true"
        props = self._props_param(request, "properties")
        assoc = [_ALIASES[a] for a in self._props_param(request, "associations") if a in _ALIASES]
        assoc = [a for a in assoc if (otype, a) in ASSOCIATION_TYPES]
        ids = table.archived if archived else table.active
        i = bisect.bisect_left(ids, start)
        page = ids[i : i + limit]
        results = [self.public(otype, table.recs[id_], props, assoc) for id_ in page]
        body: dict[str, Any] = {"results": results}
        if i + limit < len(ids):
            nxt = str(page[-1] + 1)
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return JSONResponse(body)

    def get_object(self, request: Request, otype_raw: str, id_raw: str) -> Response:
        otype, table = self._table(otype_raw)
        archived = (request.query_params.get("archived") or "false").lower() == "true"
        rec = table.recs.get(int(id_raw)) if id_raw.isdigit() else None
        if rec is None or (rec.archived_ms is not None) != archived:
            return _error(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [id_raw]},
            )
        props = self._props_param(request, "properties")
        assoc = [_ALIASES[a] for a in self._props_param(request, "associations") if a in _ALIASES]
        return JSONResponse(
            self.public(otype, rec, props, [a for a in assoc if (otype, a) in ASSOCIATION_TYPES])
        )

    def delete_object(self, otype_raw: str, id_raw: str) -> Response:
        _otype, table = self._table(otype_raw)
        rec = table.get(int(id_raw)) if id_raw.isdigit() else None
        if rec is not None:
            table.archive(rec, self.now_ms())
        return Response(status_code=204)

    def _inputs(self, body: Any, maximum: int = _BATCH_MAX) -> list[Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _bad("Invalid input JSON on line 1: 'inputs' is required.")
        inputs: list[Any] = body["inputs"]
        if len(inputs) > maximum:
            raise _bad(
                f"Batch size of {len(inputs)} exceeds the limit of {maximum} inputs.",
                context={"limit": [str(maximum)], "size": [str(len(inputs))]},
            )
        return inputs

    def _batch_response(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int, ok_status: int = 200
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(self.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return JSONResponse(body, status_code=207)
        return JSONResponse(body, status_code=ok_status)

    def batch_read(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        props = body.get("properties") or []
        id_prop = body.get("idProperty")
        started = self.now_ms()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            rec: Rec | None = None
            if id_prop:
                for id_ in table.active:
                    candidate = table.recs[id_]
                    if self.value(otype, candidate, id_prop) == key:
                        rec = candidate
                        break
            elif key.isdigit():
                rec = table.get(int(key))
            if rec is None:
                missing.append(key)
            else:
                results.append(self.public(otype, rec, props))
        errors = []
        if missing:
            errors.append(
                _std_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {otype.upper()} objects, they may "
                    "be deleted or not exist. Check that ids are valid.",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, started)

    def batch_update(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        started = self.now_ms()
        parsed: list[tuple[str, dict[str, str | None], str | None]] = []
        seen: set[str] = set()
        for item in inputs:
            if not isinstance(item, dict) or "id" not in item:
                raise _bad("Invalid input JSON: every input needs an 'id' and 'properties'.")
            id_ = str(item["id"])
            if id_ in seen:
                raise _bad(
                    f"Duplicate IDs found in batch input: [{id_}]. IDs must be unique", context={"ids": [id_]}
                )
            seen.add(id_)
            trace = item.get("objectWriteTraceId")
            parsed.append(
                (
                    id_,
                    self._validate_properties(otype, item.get("properties", {})),
                    str(trace) if trace is not None else None,
                )
            )
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        errors: list[dict[str, Any]] = []
        now = self.now_ms()
        for id_, values, trace in parsed:
            rec = table.get(int(id_)) if id_.isdigit() else None
            if rec is None:
                missing.append(id_)
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                ctx = {"ids": [id_]} if trace is None else {"ids": [id_], "objectWriteTraceId": [trace]}
                errors.append(
                    _std_error(
                        "INTERNAL_ERROR", "Internal error while writing this record; retry the input.", ctx
                    )
                )
                continue
            self._apply(otype, rec, values, now)
            out = self.public(otype, rec, list(values))
            if trace is not None:
                out["objectWriteTraceId"] = trace
            results.append(out)
        if missing:
            errors.insert(
                0,
                _std_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {otype.upper()} objects, they "
                    "may be deleted or not exist. Check that ids are valid.",
                    {"ids": missing},
                ),
            )
        if self.shuffle_batch_results:
            self.runtime.faults.shuffle(results)
        return self._batch_response(results, errors, started)

    def batch_create(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        started = self.now_ms()
        parsed: list[tuple[dict[str, str | None], list[tuple[str, int]], str | None]] = []
        for item in inputs:
            if not isinstance(item, dict):
                raise _bad("Invalid input JSON: every input needs 'properties'.")
            values = self._validate_properties(otype, item.get("properties", {}))
            if otype in ACTIVITY_TYPES and not values.get("hs_timestamp"):
                raise _bad(
                    "Property values were not valid: "
                    + json.dumps(
                        [
                            {
                                "isValid": False,
                                "message": "hs_timestamp is required",
                                "error": "REQUIRED_PROPERTY",
                                "name": "hs_timestamp",
                            }
                        ]
                    ),
                    errors=[{"message": "hs_timestamp is required", "code": "REQUIRED_PROPERTY"}],
                )
            links: list[tuple[str, int]] = []
            for assoc in item.get("associations") or []:
                to_id = str((assoc.get("to") or {}).get("id", ""))
                for spec in assoc.get("types") or []:
                    type_id = spec.get("associationTypeId")
                    to_type = (
                        _TYPE_BY_ASSOC_ID.get((otype, int(type_id))) if isinstance(type_id, int) else None
                    )
                    if to_type is None or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                        raise _bad(
                            f"{spec.get('associationCategory')} {type_id} is not a valid association "
                            f"type between {otype} and any object.",
                            subCategory="INVALID_ASSOCIATION",
                        )
                    if not to_id.isdigit():
                        raise _bad(f"Invalid association target id: {to_id}")
                    links.append((to_type, int(to_id)))
            trace = item.get("objectWriteTraceId")
            parsed.append((values, links, str(trace) if trace is not None else None))
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        now = self.now_ms()
        for index, (values, links, trace) in enumerate(parsed):
            ctx: dict[str, list[str]] = {"inputIndex": [str(index)]}
            if trace is not None:
                ctx["objectWriteTraceId"] = [trace]
            absent = [str(tid) for to_type, tid in links if self.tables[to_type].get(tid) is None]
            if absent:
                errors.append(
                    _std_error(
                        "VALIDATION_ERROR",
                        f"Associated object(s) not found: {absent}",
                        {**ctx, "ids": absent},
                        sub_category="ASSOCIATION_TARGET_NOT_FOUND",
                    )
                )
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                errors.append(
                    _std_error(
                        "INTERNAL_ERROR", "Internal error while creating this record; retry the input.", ctx
                    )
                )
                continue
            bucket = "activities" if otype in ACTIVITY_TYPES else otype
            rec = Rec(self._new_id(bucket), None, now, now)
            defaults: dict[str, str | None] = {"hs_task_status": "NOT_STARTED"} if otype == "tasks" else {}
            rec.props = {**defaults, **values}
            table.add(rec)
            for to_type, tid in links:
                self._link(otype, rec.id, to_type, tid)
            out = self.public(otype, rec, list(rec.props))
            if trace is not None:
                out["objectWriteTraceId"] = trace
            results.append(out)
        if self.shuffle_batch_results:
            self.runtime.faults.shuffle(results)
        return self._batch_response(results, errors, started, ok_status=201)

    # -- search

    def _parse_search(self, otype: str, body: Any) -> tuple[list[list[_Filter]], list[_Sort], int, int]:
        if not isinstance(body, dict):
            raise _bad("Invalid input JSON: a search request must be an object.")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0:
            raise _bad(f"Invalid limit: {limit}")
        if limit > _SEARCH_LIMIT_MAX:
            raise _bad(
                f"Invalid limit: {limit}. The maximum limit for a search request is {_SEARCH_LIMIT_MAX}."
            )
        after_raw = body.get("after")
        after = 0
        if after_raw not in (None, ""):
            if not str(after_raw).isdigit():
                raise _bad(f"Invalid paging cursor: {after_raw}")
            after = int(str(after_raw))
        defs = self.properties[otype]
        groups: list[list[_Filter]] = []
        total_filters = 0
        for group in body.get("filterGroups") or []:
            filters: list[_Filter] = []
            for f in group.get("filters") or []:
                prop = str(f.get("propertyName", ""))
                op = str(f.get("operator", "EQ"))
                if op not in _OPERATORS:
                    raise _bad(f"Unsupported operator: {op}")
                if prop not in defs and not prop.startswith("associations."):
                    raise _bad(
                        f"There was a problem with the request: Property '{prop}' does not exist on {otype}.",
                        subCategory="PROPERTY_DOESNT_EXIST",
                    )
                values = tuple(str(v) for v in f.get("values") or ())
                value = f.get("value")
                high = f.get("highValue")
                filters.append(
                    _Filter(
                        prop,
                        op,
                        None if value is None else str(value),
                        values,
                        None if high is None else str(high),
                    )
                )
            total_filters += len(filters)
            groups.append(filters)
        if len(groups) > 5 or total_filters > 18:
            raise _bad("Too many filters: at most 5 filterGroups with 18 filters in total are allowed.")
        sorts: list[_Sort] = []
        for s in body.get("sorts") or []:
            if isinstance(s, str):
                sorts.append(_Sort(s.lstrip("-"), s.startswith("-")))
            elif isinstance(s, dict):
                sorts.append(
                    _Sort(
                        str(s.get("propertyName", "")),
                        str(s.get("direction", "ASCENDING")).upper() == "DESCENDING",
                    )
                )
        return groups, sorts, limit, after

    def _typed(self, otype: str, prop: str, raw: str | None) -> Any:
        if raw is None or raw == "":
            return None
        if prop.startswith("associations."):
            return raw
        ptype = self.properties[otype].get(prop, {}).get("type", "string")
        if ptype == "number":
            try:
                return float(raw)
            except ValueError:
                return None
        if ptype in ("datetime", "date"):
            return _parse_time(raw)
        return raw.lower()

    def _match(self, otype: str, rec: Rec, f: _Filter) -> bool:
        if f.prop.startswith("associations."):
            to_type = _ALIASES.get(f.prop.split(".", 1)[1])
            linked = {str(i) for i in self.assoc.get((otype, to_type or ""), {}).get(rec.id, [])}
            wanted = {f.value} if f.value is not None else set(f.values)
            hit = bool(linked & wanted)
            return not hit if f.op in ("NEQ", "NOT_IN") else hit
        raw = self.value(otype, rec, f.prop)
        op = f.op
        if op == "HAS_PROPERTY":
            return raw not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return raw in (None, "")
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            needle = (f.value or "").lower()
            text = (raw or "").lower()
            tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
            if "*" in needle:
                hit = fnmatch.fnmatchcase(text, needle) or any(fnmatch.fnmatchcase(t, needle) for t in tokens)
            else:
                hit = needle == text or needle in tokens
            return hit if op == "CONTAINS_TOKEN" else not hit
        actual = self._typed(otype, f.prop, raw)
        if op in ("IN", "NOT_IN"):
            hit = actual is not None and actual in {self._typed(otype, f.prop, v) for v in f.values}
            return hit if op == "IN" else not hit
        expected = self._typed(otype, f.prop, f.value)
        if op == "NEQ":
            return bool(actual != expected)
        if actual is None or expected is None:
            return False
        try:
            if op == "EQ":
                return bool(actual == expected)
            if op == "LT":
                return bool(actual < expected)
            if op == "LTE":
                return bool(actual <= expected)
            if op == "GT":
                return bool(actual > expected)
            if op == "GTE":
                return bool(actual >= expected)
            if op == "BETWEEN":
                high = self._typed(otype, f.prop, f.high)
                return high is not None and bool(expected <= actual <= high)
        except TypeError:
            return False
        return False

    def _query_match(self, otype: str, rec: Rec, query: str) -> bool:
        words = [w for w in query.lower().split() if w]
        text = " ".join((self.value(otype, rec, p) or "") for p in _QUERY_PROPS[otype]).lower()
        tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
        return all(any(t.startswith(w) for t in tokens) or w in text for w in words)

    def search(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        groups, sorts, limit, after = self._parse_search(otype, body)
        cap = self.options.search_cap
        if after + limit > cap:
            raise _bad(
                f"There was a problem with the request. The search endpoints cannot return more than "
                f"{cap} results for a query (after={after}, limit={limit})."
            )
        query = str(body.get("query") or "").strip()
        props = body.get("properties") or []
        mod_props = _MODIFIED_PROPS[otype]
        ids = self._search_ids(otype, table, groups, sorts, query, mod_props)
        total, page_ids = ids(after, limit)
        body_out: dict[str, Any] = {
            "total": total,
            "results": [self._search_public(otype, table.recs[i], props) for i in page_ids],
        }
        if after + limit < total:
            body_out["paging"] = {"next": {"after": str(after + limit)}}
        return JSONResponse(body_out)

    def _search_public(self, otype: str, rec: Rec, props: Sequence[str]) -> dict[str, Any]:
        out = self.public(otype, rec, props)
        out.pop("associations", None)
        return out

    def _search_ids(
        self,
        otype: str,
        table: Table,
        groups: list[list[_Filter]],
        sorts: list[_Sort],
        query: str,
        mod_props: tuple[str, ...],
    ) -> Callable[[int, int], tuple[int, list[int]]]:
        """A function (after, limit) -> (total, page ids) for this query, via an index where possible."""
        sort = sorts[0] if sorts else None
        single = len(groups) <= 1 and len(sorts) <= 1 and not query
        filters = groups[0] if groups else []
        if single:
            on_mod = [f for f in filters if f.prop in mod_props]
            use_mod = bool(on_mod) if sort is None else sort.prop in mod_props
            if use_mod or sort is None or sort.prop == "hs_object_id":
                desc = bool(sort and sort.desc)
                if use_mod:
                    index_prop: tuple[str, ...] = mod_props
                    keys: Sequence[Any] = table.modified
                else:
                    index_prop = ("hs_object_id",)
                    keys = table.active
                ranged = [
                    f
                    for f in filters
                    if f.prop in index_prop
                    and f.op in ("EQ", "GT", "GTE", "LT", "LTE", "BETWEEN")
                    and f.value is not None
                ]
                rest = [f for f in filters if f not in ranged]
                lo, hi = self._range(otype, keys, ranged, use_mod)
                if lo >= hi:
                    return lambda after, limit: (0, [])

                def id_at(pos: int) -> int:
                    item = keys[pos]
                    return int(item[1]) if use_mod else int(item)

                if not rest:

                    def page(after: int, limit: int) -> tuple[int, list[int]]:
                        total = hi - lo
                        if desc:
                            positions = range(hi - 1 - after, max(lo - 1, hi - 1 - after - limit), -1)
                        else:
                            positions = range(lo + after, min(hi, lo + after + limit))
                        return total, [id_at(p) for p in positions]

                    return page
                order = range(hi - 1, lo - 1, -1) if desc else range(lo, hi)
                matched = [
                    id_at(p) for p in order if all(self._match(otype, table.recs[id_at(p)], f) for f in rest)
                ]
                return lambda after, limit: (len(matched), matched[after : after + limit])
        # General path: scan, filter (OR of ANDs), sort with ties broken by id.
        found = [
            id_
            for id_ in table.active
            if (not groups or any(all(self._match(otype, table.recs[id_], f) for f in g) for g in groups))
            and (not query or self._query_match(otype, table.recs[id_], query))
        ]
        for s in reversed(sorts):

            def key(id_: int, prop: str = s.prop) -> tuple[bool, Any]:
                typed = self._typed(otype, prop, self.value(otype, table.recs[id_], prop))
                return typed is None, typed if typed is not None else 0

            found.sort(key=key, reverse=s.desc)
        return lambda after, limit: (len(found), found[after : after + limit])

    def _range(
        self, otype: str, keys: Sequence[Any], ranged: list[_Filter], use_mod: bool
    ) -> tuple[int, int]:
        """Positions [lo, hi) of ``keys`` (ints, or (ms, id) tuples) that satisfy every range filter."""
        lo, hi = 0, len(keys)

        def pos(v: int) -> int:
            probe: Any = (v, -1) if use_mod else v
            return bisect.bisect_left(keys, probe)

        for f in ranged:
            typed = self._typed(otype, f.prop, f.value)
            if typed is None:
                return 0, 0
            low_ceil, low_floor = math.ceil(typed), math.floor(typed)
            if f.op == "GTE":
                lo = max(lo, pos(low_ceil))
            elif f.op == "GT":
                lo = max(lo, pos(low_floor + 1))
            elif f.op == "LT":
                hi = min(hi, pos(low_ceil))
            elif f.op == "LTE":
                hi = min(hi, pos(low_floor + 1))
            elif f.op == "EQ":
                if low_ceil != low_floor:
                    return 0, 0
                lo, hi = max(lo, pos(low_ceil)), min(hi, pos(low_ceil + 1))
            elif f.op == "BETWEEN":
                high = self._typed(otype, f.prop, f.high)
                if high is None:
                    return 0, 0
                lo, hi = max(lo, pos(low_ceil)), min(hi, pos(math.floor(high) + 1))
        return lo, hi

    # -- associations v4

    def associations_batch_read(self, from_raw: str, to_raw: str, body: Any) -> Response:
        from_type, from_table = self._table(from_raw)
        to_type, to_table = self._table(to_raw)
        inputs = self._inputs(body, _ASSOC_BATCH_MAX)
        started = self.now_ms()
        types = ASSOCIATION_TYPES.get((from_type, to_type))
        if types is None:
            raise _bad(f"No association types exist between {from_type} and {to_type}.")
        assoc_types = [{"category": "HUBSPOT_DEFINED", "typeId": tid, "label": label} for tid, label in types]
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            id_raw = str((item or {}).get("id", ""))
            rec = from_table.get(int(id_raw)) if id_raw.isdigit() else None
            targets = (
                []
                if rec is None
                else [
                    t for t in self.assoc[(from_type, to_type)].get(rec.id, []) if to_table.get(t) is not None
                ]
            )
            if not targets:
                errors.append(
                    _std_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {_SINGULAR[from_type]} {id_raw}.",
                        {"fromObjectId": [id_raw]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                    )
                )
                continue
            results.append(
                {
                    "from": {"id": id_raw},
                    "to": [{"toObjectId": str(t), "associationTypes": assoc_types} for t in targets],
                }
            )
        return self._batch_response(results, errors, started)

    # -- properties

    def list_properties(self, otype_raw: str, request: Request) -> Response:
        otype, _ = self._table(otype_raw)
        archived = (request.query_params.get("archived") or "false").lower() == "true"
        return JSONResponse(
            {"results": [p for p in self.properties[otype].values() if p["archived"] == archived]}
        )

    def get_property(self, otype_raw: str, name: str) -> Response:
        otype, _ = self._table(otype_raw)
        prop = self.properties[otype].get(name)
        if prop is None:
            return _error(404, f"Unable to find property {name} on {otype}.", "OBJECT_NOT_FOUND")
        return JSONResponse(prop)

    def _create_property(self, otype: str, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise _bad("Invalid input JSON: a property definition must be an object.")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not spec.get(k)]
        if missing:
            raise _bad(f"Invalid input JSON: missing required fields {missing}.")
        name = str(spec["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise _bad(f"Property name '{name}' is invalid: use lower-case letters, digits and underscores.")
        if name in self.properties[otype]:
            raise _HTTPError(
                _error(
                    409,
                    f"Property named '{name}' already exists.",
                    "OBJECT_ALREADY_EXISTS",
                    subCategory="PropertyValidationError.PROPERTY_EXISTS",
                    context={"name": [name]},
                )
            )
        group = str(spec["groupName"])
        if group not in self.groups[otype]:
            raise _bad(f"Property group '{group}' does not exist for {otype}.")
        ptype = str(spec["type"])
        if ptype not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise _bad(f"Invalid property type: {ptype}")
        options = spec.get("options") or []
        if ptype == "enumeration" and not options and str(spec["fieldType"]) != "select":
            raise _bad("Enumeration properties need options.")
        opts = [
            {
                "label": str(o.get("label", o.get("value"))),
                "value": str(o.get("value")),
                "displayOrder": int(o.get("displayOrder", i)),
                "hidden": bool(o.get("hidden", False)),
            }
            for i, o in enumerate(options)
        ]
        prop = self._property_json(
            otype,
            name,
            str(spec["label"]),
            ptype,
            str(spec["fieldType"]),
            group,
            opts,
            int(spec.get("displayOrder", -1)),
            hubspot_defined=False,
            description=str(spec.get("description", "")),
            has_unique_value=bool(spec.get("hasUniqueValue", False)),
        )
        stamp = iso_ms(self.now_ms())
        prop["createdAt"] = prop["updatedAt"] = stamp
        self.properties[otype][name] = prop
        return prop

    def create_property(self, otype_raw: str, body: Any) -> Response:
        otype, _ = self._table(otype_raw)
        return JSONResponse(self._create_property(otype, body), status_code=201)

    def batch_create_properties(self, otype_raw: str, body: Any) -> Response:
        otype, _ = self._table(otype_raw)
        inputs = self._inputs(body)
        started = self.now_ms()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for spec in inputs:
            try:
                results.append(self._create_property(otype, spec))
            except _HTTPError as exc:
                data = json.loads(bytes(exc.response.body))
                name = str((spec or {}).get("name", "")) if isinstance(spec, dict) else ""
                errors.append(
                    _std_error(data["category"], data["message"], {"name": [name]}, data.get("subCategory"))
                )
        return self._batch_response(results, errors, started, ok_status=201)

    def list_groups(self, otype_raw: str) -> Response:
        otype, _ = self._table(otype_raw)
        return JSONResponse({"results": list(self.groups[otype].values())})

    def create_group(self, otype_raw: str, body: Any) -> Response:
        otype, _ = self._table(otype_raw)
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise _bad("Invalid input JSON: 'name' and 'label' are required.")
        name = str(body["name"])
        if name in self.groups[otype]:
            return _error(
                409,
                f"Property group named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        group = {
            "name": name,
            "label": str(body["label"]),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        self.groups[otype][name] = group
        return JSONResponse(group, status_code=201)

    # -- owners

    def list_owners(self, request: Request) -> Response:
        q = request.query_params
        limit = max(1, min(_int_param(q.get("limit"), 100, "limit"), _OWNER_LIMIT_MAX))
        start = int(q["after"]) if (q.get("after") or "").isdigit() else 0
        email = (q.get("email") or "").lower()
        if (q.get("archived") or "false").lower() == "true":
            return JSONResponse({"results": []})
        owners = [o for o in self.scenario.owners if not email or o.email.lower() == email]
        page = owners[start : start + limit]
        stamp = _ms(self.scenario.now) - 1200 * 86_400_000
        results = [
            {
                "id": str(self.owner_ids[o.key]),
                "email": o.email,
                "type": "PERSON",
                "firstName": o.first_name,
                "lastName": o.last_name,
                "userId": 9_000_000 + i,
                "userIdIncludingInactive": 9_000_000 + i,
                "createdAt": iso_ms(stamp + i * 86_400_000),
                "updatedAt": iso_ms(stamp + i * 86_400_000 + 3_600_000),
                "archived": False,
                "teams": [],
            }
            for i, o in enumerate(page, start=start)
        ]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(owners):
            nxt = str(start + limit)
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return JSONResponse(body)


def _normalize_type(raw: str) -> str:
    otype = _ALIASES.get(raw)
    if otype is None:
        raise KeyError(f"unknown object type {raw!r}")
    return otype


def _int_param(raw: str | None, default: int, name: str) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise _bad(f"Invalid value for {name}: {raw}") from None


# ---- HTTP wiring ----------------------------------------------------------------------------------------

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def _rate_limited(policy: str, message: str, decision: LimitDecision | None) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
    response = JSONResponse(body, status_code=429)
    if decision is not None:
        response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = "0"
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(decision.interval_ms)
    return response


class _Wiring:
    """Wraps CRM handlers with auth, fault injection, rate limits, headers, stats and the store lock."""

    def __init__(self, sb: HubSpotSandbox) -> None:
        self.sb = sb

    def crm(
        self, handler: Handler, *, search: bool = False, body: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        runtime = self.sb.runtime

        async def endpoint(request: Request) -> Response:
            route = f"{request.method} {_ID_SEGMENT.sub('/{id}', request.url.path)}"
            response = await self._run(request, handler, search=search, body=body)
            runtime.stats.record(route, response.status_code)
            return response

        return endpoint

    async def _run(self, request: Request, handler: Handler, *, search: bool, body: bool) -> Response:
        sb, runtime = self.sb, self.sb.runtime
        with sb.lock:
            denied, private_app = sb.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                storm = LimitDecision(False, runtime.limiter.limit, 0, runtime.limiter.interval_ms)
                return _rate_limited(
                    "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", storm
                )
            if fault == "error_502":
                return Response(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    status_code=502,
                    media_type="text/html",
                )
            if fault == "error_503":
                return _error(
                    503, "The service is temporarily unavailable. Please retry.", "SERVICE_UNAVAILABLE"
                )
            return DroppedResponse()
        decision: LimitDecision | None = None
        daily: LimitDecision | None = None
        if search:
            if not runtime.search_limiter.acquire().allowed:
                return _rate_limited("SECONDLY", "You have reached your secondly limit.", None)
        else:
            decision = runtime.limiter.acquire()
            if not decision.allowed:
                return _rate_limited(
                    "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", decision
                )
        if private_app:
            daily = runtime.daily.acquire()
            if not daily.allowed:
                exhausted = _rate_limited("DAILY", "You have reached your daily limit.", decision)
                exhausted.headers["X-HubSpot-RateLimit-Daily"] = str(daily.limit)
                exhausted.headers["X-HubSpot-RateLimit-Daily-Remaining"] = "0"
                return exhausted
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = None
            if payload is None:
                invalid = _error(
                    400, "Invalid input JSON on line 1: the body is not valid JSON.", "VALIDATION_ERROR"
                )
                return self._headers(invalid, decision, daily)
        response: Response
        try:
            with sb.lock:
                response = handler(request, payload)
        except _HTTPError as exc:
            response = exc.response
        return self._headers(response, decision, daily)

    @staticmethod
    def _headers(response: Response, decision: LimitDecision | None, daily: LimitDecision | None) -> Response:
        if decision is not None:
            response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
            response.headers["X-HubSpot-RateLimit-Remaining"] = str(decision.remaining)
            response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(decision.interval_ms)
        if daily is not None and decision is not None:
            response.headers["X-HubSpot-RateLimit-Daily"] = str(daily.limit)
            response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(daily.remaining)
        return response


def _p(request: Request, name: str) -> str:
    return str(request.path_params[name])


def create_app(scenario: Scenario, options: SandboxOptions) -> Starlette:
    """The HubSpot emulator as a Starlette app; ``app.state.sandbox`` is its :class:`HubSpotSandbox`."""
    from crm_upsell_hubspot.sandbox_outcomes import outcome_routes

    sb = HubSpotSandbox(scenario, options)
    w = _Wiring(sb)
    obj = "/crm/v3/objects/{object_type}"

    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed without python-multipart
        raw = (await request.body()).decode("utf-8", "replace")
        data = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        for k, v in request.query_params.items():
            data.setdefault(k, v)
        response = sb.issue_token(data)
        sb.runtime.stats.record("POST /oauth/v1/token", response.status_code)
        return response

    routes = [
        Route("/oauth/v1/token", token, methods=["POST"]),
        Route("/crm/v3/owners", w.crm(lambda r, b: sb.list_owners(r)), methods=["GET"]),
        Route("/crm/v3/owners/", w.crm(lambda r, b: sb.list_owners(r)), methods=["GET"]),
        Route(
            "/crm/v3/properties/{object_type}",
            w.crm(lambda r, b: sb.list_properties(_p(r, "object_type"), r)),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/groups",
            w.crm(lambda r, b: sb.list_groups(_p(r, "object_type"))),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/groups",
            w.crm(lambda r, b: sb.create_group(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/batch/create",
            w.crm(lambda r, b: sb.batch_create_properties(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/{name}",
            w.crm(lambda r, b: sb.get_property(_p(r, "object_type"), _p(r, "name"))),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}",
            w.crm(lambda r, b: sb.create_property(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(obj, w.crm(lambda r, b: sb.list_objects(r, _p(r, "object_type"))), methods=["GET"]),
        Route(
            f"{obj}/search",
            w.crm(lambda r, b: sb.search(_p(r, "object_type"), b), search=True, body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/read",
            w.crm(lambda r, b: sb.batch_read(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/update",
            w.crm(lambda r, b: sb.batch_update(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/create",
            w.crm(lambda r, b: sb.batch_create(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            obj + "/{object_id}",
            w.crm(lambda r, b: sb.get_object(r, _p(r, "object_type"), _p(r, "object_id"))),
            methods=["GET"],
        ),
        Route(
            obj + "/{object_id}",
            w.crm(lambda r, b: sb.delete_object(_p(r, "object_type"), _p(r, "object_id"))),
            methods=["DELETE"],
        ),
        Route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read",
            w.crm(
                lambda r, b: sb.associations_batch_read(_p(r, "from_type"), _p(r, "to_type"), b), body=True
            ),
            methods=["POST"],
        ),
        *control_routes(sb.runtime),
        *_hubspot_control_routes(sb),
        *outcome_routes(sb),  # POST /__sandbox/play-outcomes (sandbox_outcomes.py)
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(LatencyMiddleware, options=options, prefixes=("/crm", "/oauth"))],
    )
    app.state.sandbox = sb
    return app


def _hubspot_control_routes(sb: HubSpotSandbox) -> list[Route]:
    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {}

    async def touch_route(request: Request) -> Response:
        b = await body_of(request)
        ids = sb.touch(
            str(b.get("object_type", "companies")),
            count=b.get("count"),
            ids=b.get("ids"),
            same_ms=bool(b.get("same_ms", True)),
        )
        return JSONResponse({"ids": ids, "modified_at": iso_ms(sb.now_ms())})

    async def archive_route(request: Request) -> Response:
        b = await body_of(request)
        otype = _normalize_type(str(b.get("object_type", "companies")))
        ids = b.get("ids")
        if ids is None:
            with sb.lock:
                ids = [str(i) for i in sb.tables[otype].active[: int(b.get("count", 0))]]
        return JSONResponse({"ids": sb.archive(otype, ids), "archived_at": iso_ms(sb.now_ms())})

    async def set_property_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            record = sb.set_properties(
                str(b.get("object_type", "companies")), str(b["id"]), dict(b.get("properties") or {})
            )
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.hubspot_id(k) for k in keys if k in sb.ids or k in sb.owner_ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    async def batch_order_route(request: Request) -> Response:
        b = await body_of(request)
        sb.shuffle_batch_results = bool(b.get("shuffle", True))
        return JSONResponse({"shuffle": sb.shuffle_batch_results})

    return [
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/archive", archive_route, methods=["POST"]),
        Route("/__sandbox/set-property", set_property_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
        Route("/__sandbox/batch-order", batch_order_route, methods=["POST"]),
    ]


# ---- module-level helpers for tests -----------------------------------------------------------------------


def sandbox_state(app: Starlette | HubSpotSandbox) -> HubSpotSandbox:
    """The :class:`HubSpotSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, HubSpotSandbox):
        return app
    state: HubSpotSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | HubSpotSandbox,
    object_type: str = "companies",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Mark ``count`` records (lowest ids first) or ``ids`` modified now, all at the same millisecond."""
    return sandbox_state(app).touch(object_type, count, ids)


def archive(app: Starlette | HubSpotSandbox, object_type: str, ids: Iterable[str]) -> list[str]:
    """Archive records; they leave lists and search and appear under ``archived=true``."""
    return sandbox_state(app).archive(object_type, ids)


def set_properties(
    app: Starlette | HubSpotSandbox, object_type: str, object_id: str, properties: dict[str, str | None]
) -> dict[str, Any]:
    """Set property values on one record as a user would (the record's modified stamp moves)."""
    return sandbox_state(app).set_properties(object_type, object_id, properties)


def hubspot_id(app: Starlette | HubSpotSandbox, key: str) -> str:
    """The HubSpot id given to a scenario key (``co-000001``, ``owner-0001``...)."""
    return sandbox_state(app).hubspot_id(key)
