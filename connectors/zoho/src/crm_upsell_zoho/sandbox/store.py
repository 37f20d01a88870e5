"""The Zoho sandbox's storage types: field and module definitions, records, sorted indexes, errors.

Records keep their scenario source and only store values written later, so 400,000 activities load in
seconds. Each module keeps three sorted indexes (id, ``(Modified_Time ms, id)``, ``(Created_Time ms, id)``)
so a page costs O(log n + page). Values are held in a "stored" form (lookups as int ids, datetimes as
epoch milliseconds, dates as ``YYYY-MM-DD``) and rendered in Zoho's JSON shapes by ``Org.render``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "MODULES",
    "DeletedRec",
    "FieldDef",
    "ModuleDef",
    "Rec",
    "Table",
    "User",
    "WriteError",
    "api_name_from_label",
    "parse_zoho_time",
]

ORG_PREFIX = 5_725_767  # the first seven digits of every id, like a real Zoho org
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY_MS = 86_400_000

MODULES: tuple[str, ...] = ("Accounts", "Contacts", "Deals", "Products", "Tasks", "Calls", "Events", "Notes")
ACTIVITY_MODULES: dict[str, str] = {"call": "Calls", "meeting": "Events", "note": "Notes", "task": "Tasks"}

STAGES_OPEN: dict[str, str] = {
    "appointmentscheduled": "Qualification",
    "qualifiedtobuy": "Needs Analysis",
    "presentationscheduled": "Value Proposition",
    "decisionmakerboughtin": "Id. Decision Makers",
    "contractsent": "Negotiation/Review",
}
STAGES: dict[str, str] = {**STAGES_OPEN, "closedwon": "Closed Won", "closedlost": "Closed Lost"}
CALL_RESULTS: dict[str, str] = {
    "connected": "Interested",
    "complaint": "Not interested",
    "no_answer": "No response/Busy",
    "busy": "No response/Busy",
    "left_voicemail": "Requested call back",
    "wrong_number": "Invalid number",
}
PRODUCT_CATEGORIES: dict[str, str] = {
    "crm": "CRM",
    "marketing": "Marketing",
    "support": "Support",
    "analytics": "Analytics",
}
PRIORITIES = ("High", "Normal", "Normal", "Low", "Highest", "Lowest")
TASK_STATUSES = ("Not Started", "Deferred", "In Progress", "Completed", "Waiting for input")

JSON_TYPES = {
    "text": "string",
    "textarea": "string",
    "email": "string",
    "website": "string",
    "phone": "string",
    "picklist": "string",
    "date": "string",
    "datetime": "string",
    "integer": "integer",
    "bigint": "integer",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "decimal": "double",
    "boolean": "boolean",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
    "subform": "jsonarray",
}
# What POST /settings/fields accepts, with the default length Zoho gives each type ("Field Types: Data
# Types and Length Limits", https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html).
CREATABLE_TYPES: dict[str, int] = {
    "text": 255,
    "textarea": 32_000,
    "email": 100,
    "website": 255,
    "phone": 30,
    "integer": 9,
    "bigint": 18,
    "double": 16,
    "currency": 16,
    "percent": 5,
    "decimal": 16,
    "date": 20,
    "datetime": 120,
    "picklist": 120,
    "boolean": 5,
}
#: Display names and symbols of the currencies a scenario uses (ISO code -> (name, symbol)); which
#: currencies the org has, its home currency and the rates come from the scenario (see ``Org``).
CURRENCY_NAMES: dict[str, tuple[str, str]] = {
    "USD": ("US Dollar", "$"),
    "EUR": ("Euro", "€"),
    "JPY": ("Japanese Yen", "¥"),
    "GBP": ("Pound Sterling", "£"),
}


def currency_name(code: str) -> tuple[str, str]:
    """(name, symbol) of an ISO currency code; the code itself for one without a known name."""
    return CURRENCY_NAMES.get(code, (code, code))


SYSTEM_FIELDS = frozenset({"Created_Time", "Modified_Time", "Created_By", "Modified_By"})


def ms_of(value: datetime) -> int:
    return (value - EPOCH) // MS


def parse_zoho_time(raw: str) -> int | None:
    """Epoch milliseconds from ISO-8601 (``2026-01-01T00:00:00+05:30``, ``...Z`` or a date); None if bad."""
    text = raw.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(
            text.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in text else text
        )
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MS


def api_name_from_label(label: str) -> str:
    """Zoho's api_name for a new field label: non-alphanumerics dropped, spaces to underscores."""
    cleaned = re.sub(r"[^\w ]+", "", label, flags=re.ASCII).strip()
    name = re.sub(r"[ _]+", "_", cleaned)
    if name and name[0].isdigit():
        name = f"Field_{name}"
    return name


@dataclass(slots=True)
class FieldDef:
    api_name: str
    label: str
    data_type: str
    id: int
    custom: bool = False
    read_only: bool = False
    mandatory: bool = False
    length: int = 255
    options: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # picklist display values, parallel to ``options``
    lookup_module: str | None = None  # "*" for What_Id / Parent_Id (module chosen by $se_module)
    created_ms: int | None = None
    source: str = "default"


@dataclass
class ModuleDef:
    name: str
    singular: str
    id: int
    display_field: str
    duplicate_field: str | None
    fields: dict[str, FieldDef] = field(default_factory=dict)
    getters: dict[str, Callable[[Any], Any]] = field(default_factory=dict)


class Rec:
    """One record: its scenario source (None when created through the API) plus written values."""

    __slots__ = ("created_ms", "id", "src", "updated_ms", "vals")

    def __init__(self, id_: int, src: object | None, created_ms: int, updated_ms: int) -> None:
        self.id = id_
        self.src = src
        self.vals: dict[str, Any] | None = None
        self.created_ms = created_ms
        self.updated_ms = updated_ms


@dataclass(frozen=True, slots=True)
class DeletedRec:
    id: int
    display_name: str | None
    kind: str  # recycle | permanent
    deleted_ms: int
    deleted_by: int | None
    created_by: int | None


@dataclass
class Table:
    """One module's records with sorted id / modified / created indexes and its deletions."""

    module: str
    recs: dict[int, Rec] = field(default_factory=dict)
    by_id: list[int] = field(default_factory=list)
    by_mod: list[tuple[int, int]] = field(default_factory=list)
    by_created: list[tuple[int, int]] = field(default_factory=list)
    deleted: list[DeletedRec] = field(default_factory=list)
    version: int = 0

    def finish_load(self) -> None:
        self.by_id = sorted(self.recs)
        self.by_mod = sorted((r.updated_ms, r.id) for r in self.recs.values())
        self.by_created = sorted((r.created_ms, r.id) for r in self.recs.values())

    def add(self, rec: Rec) -> None:
        self.recs[rec.id] = rec
        bisect.insort(self.by_id, rec.id)
        bisect.insort(self.by_mod, (rec.updated_ms, rec.id))
        bisect.insort(self.by_created, (rec.created_ms, rec.id))
        self.version += 1

    def touch(self, rec: Rec, ms: int) -> None:
        _remove(self.by_mod, (rec.updated_ms, rec.id))
        rec.updated_ms = ms
        bisect.insort(self.by_mod, (ms, rec.id))
        self.version += 1

    def remove(self, rec: Rec) -> None:
        del self.recs[rec.id]
        _remove(self.by_mod, (rec.updated_ms, rec.id))
        _remove(self.by_created, (rec.created_ms, rec.id))
        j = bisect.bisect_left(self.by_id, rec.id)
        if j < len(self.by_id) and self.by_id[j] == rec.id:
            del self.by_id[j]
        self.version += 1


def _remove(index: list[tuple[int, int]], key: tuple[int, int]) -> None:
    i = bisect.bisect_left(index, key)
    if i < len(index) and index[i] == key:
        del index[i]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    key: str
    first_name: str
    last_name: str
    email: str
    created_ms: int

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class WriteError(Exception):
    """One record's write problem, rendered as a per-record ``{code, details, message, status}``."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def industry(raw: str) -> str:
    return raw.replace("_", " ").title().replace(" And ", " and ")
