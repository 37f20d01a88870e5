"""Object types, aliases, association type ids, default and searchable properties, limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
