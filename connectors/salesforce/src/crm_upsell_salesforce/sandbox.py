"""A Salesforce REST API emulator (OAuth token flows, SOQL query/queryAll, getDeleted, sObject Collections,
Tooling CustomField, limits, describe) serving the shared scenario in Salesforce's shapes.

Shapes follow Salesforce's official Postman collection and REST API guide: 18-character ids with the
standard key prefixes, ``attributes`` on every record, datetimes as ``2026-01-01T00:00:00.000+0000``,
error bodies as ``[{"message", "errorCode"}]``, ``Sforce-Limit-Info`` on every API response and query
cursors (``nextRecordsUrl``) that hold a position, not a copy. Each object keeps its records indexed by
(SystemModstamp, Id) so the incremental-sync query ``WHERE SystemModstamp >= X ORDER BY SystemModstamp,
Id`` costs O(log n + page). The SOQL subset lives in :mod:`crm_upsell_salesforce.sandbox_soql`.
"""

from __future__ import annotations

import base64
import bisect
import functools
import gc
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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
    SDeal,
    SLineItem,
    SProduct,
)
from crm_upsell_connector.sandbox.server import (
    DroppedResponse,
    LatencyMiddleware,
    SandboxOptions,
    SandboxRuntime,
    control_routes,
)
from crm_upsell_salesforce.sandbox_soql import (
    Query,
    SoqlError,
    TBool,
    TCond,
    TExpr,
    compile_where,
    id15_to_18,
    parse_datetime_ms,
    parse_soql,
    range_bounds,
    referenced_fields,
)

__all__ = [
    "KEY_PREFIXES",
    "OBJECTS",
    "SalesforceSandbox",
    "SandboxKeypair",
    "create_app",
    "delete",
    "salesforce_id",
    "sandbox_keypair",
    "sandbox_state",
    "set_fields",
    "touch",
]

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
}
OBJECTS: tuple[str, ...] = tuple(KEY_PREFIXES)
_TOOLING_PREFIX = {"CustomField": "00N"}
_PRICEBOOK_PREFIX = "01s"
_ORG_PREFIX = "00D"
_LOCATOR_PREFIX = "01g"

BATCH_SIZE = 2000
_MIN_BATCH = 200
_COLLECTION_MAX = 200
_MAX_CURSORS = 500
_DELETED_WINDOW_MS = 15 * 86_400_000
_API_VERSIONS = {
    "55.0": "Summer '22",
    "56.0": "Winter '23",
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}
_VERSION = re.compile(r"v(\d{2})\.0")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DAY = 86_400_000

_INDUSTRIES = {
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
_STAGES = {
    "appointmentscheduled": "Prospecting",
    "qualifiedtobuy": "Qualification",
    "presentationscheduled": "Value Proposition",
    "decisionmakerboughtin": "Id. Decision Makers",
    "contractsent": "Negotiation/Review",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}
_PROBABILITY = {
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
_DISPOSITIONS = {
    "connected": "Connected",
    "complaint": "Connected",
    "no_answer": "No Answer",
    "left_voicemail": "Left Voicemail",
    "busy": "Busy",
    "wrong_number": "Wrong Number",
}
_MEETING_OUTCOMES = {
    "completed": "Completed",
    "scheduled": "Scheduled",
    "no_show": "No Show",
    "canceled": "Canceled",
    "rescheduled": "Rescheduled",
}
_TASK_SUBTYPE = {"call": "Call", "email": "Email", "note": "Task", "task": "Task"}
_TASK_TYPE = {"call": "Call", "email": "Email", "note": "Note", "task": "Other"}
_PRIORITIES = ("High", "Normal", "Normal", "Low")
_PERIODS = {"P12M": "Annual", "P1M": "Monthly"}
_STRINGY = frozenset({"string", "textarea", "picklist", "email", "url", "phone", "combobox"})
_NUMERIC = frozenset({"double", "currency", "percent", "int"})
_MODSTAMP_FIELDS = frozenset({"SystemModstamp", "LastModifiedDate"})


# ---- small helpers ------------------------------------------------------------------------------------


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def sf_datetime(ms: int) -> str:
    """Epoch milliseconds as Salesforce writes datetimes: ``2026-01-01T00:00:00.000+0000``."""
    # Formatted by hand: strftime is the hot spot when a page renders thousands of stamps.
    d = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{ms % 1000:03d}+0000"
    )


def _sf_date(ms: int) -> str:
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


def _error(status: int, code: str, message: str, fields: list[str] | None = None) -> JSONResponse:
    return JSONResponse(_error_list(code, message, fields), status_code=status)


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, code, message)


def _label(name: str) -> str:
    if name.endswith("__c"):
        return name[:-3].replace("_", " ").strip().title()
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.removesuffix("Id") or name)


# ---- the fixed JWT key pair --------------------------------------------------------------------------


class SandboxKeypair(NamedTuple):
    """PEM texts: the private key signs JWT assertions (client side), the public key verifies them."""

    private_pem: str
    public_pem: str


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]
_SMALL_PRODUCT = math.prod(_SMALL_PRIMES)


def _probable_prime(n: int, rng: random.Random) -> bool:
    if math.gcd(n, _SMALL_PRODUCT) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int, e: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % e and _probable_prime(candidate, rng):
            return candidate


def _generate_keypair(seed: int = 20_261_101) -> SandboxKeypair:
    # Derived from a fixed seed so every process (and a connector's test fixtures) sees the same key.
    rng = random.Random(seed)
    e = 65_537
    p = _prime(rng, 1024, e)
    q = _prime(rng, 1024, e)
    while q == p:
        q = _prime(rng, 1024, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    key = numbers.private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return SandboxKeypair(private_pem, public_pem)


@functools.cache
def sandbox_keypair() -> SandboxKeypair:
    """The RSA-2048 key pair the sandbox trusts for the JWT bearer flow.

    Derived from a fixed seed, so it is the same in every process; computed once (about half a second)
    on first use and cached.
    """
    return _generate_keypair()


# ---- schema --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field as ``describe`` reports it, plus what writes may do with it."""

    name: str
    type: str
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # on create
    length: int = 0
    precision: int = 0
    scale: int = 0
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False
    label: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or _label(self.name),
            "type": self.type,
            "custom": self.custom,
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 0,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "calculated": False,
            "defaultedOnCreate": not self.nillable and not self.required,
            "filterable": self.type != "textarea" or self.length <= 255,
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "percent", "datetime"),
            "idLookup": self.name == "Id",
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
            "picklistValues": [],
        }


def _f(name: str, ftype: str, access: str = "cu", **kw: Any) -> FieldDef:
    lengths = {"string": 255, "textarea": 32_000, "picklist": 255, "email": 80, "url": 255, "phone": 40}
    kw.setdefault("length", 18 if ftype in ("id", "reference") else lengths.get(ftype, 0))
    if ftype in ("boolean",):
        kw.setdefault("nillable", False)
    return FieldDef(
        name,
        ftype,
        createable="c" in access,
        updateable="u" in access,
        custom=name.endswith("__c"),
        **kw,
    )


def _ref(name: str, target: str, relationship: str | None, access: str = "cu", **kw: Any) -> FieldDef:
    return _f(name, "reference", access, reference_to=(target,), relationship=relationship, **kw)


def _system_fields(with_deleted: bool = True) -> list[FieldDef]:
    out = [_f("Id", "id", "", nillable=False)]
    if with_deleted:
        out.append(_f("IsDeleted", "boolean", ""))
    out += [
        _f("CreatedDate", "datetime", "", nillable=False),
        _ref("CreatedById", "User", "CreatedBy", "", nillable=False),
        _f("LastModifiedDate", "datetime", "", nillable=False),
        _ref("LastModifiedById", "User", "LastModifiedBy", "", nillable=False),
        _f("SystemModstamp", "datetime", "", nillable=False),
    ]
    return out


def _owner() -> FieldDef:
    return _ref("OwnerId", "User", "Owner", nillable=False)


def _num(
    name: str, ftype: str = "double", precision: int = 18, scale: int = 0, access: str = "cu"
) -> FieldDef:
    return _f(name, ftype, access, precision=precision, scale=scale)


def _activity_common() -> list[FieldDef]:
    return [
        _f("WhatId", "reference", reference_to=("Account", "Opportunity", "Asset"), relationship=None),
        _f("WhoId", "reference", reference_to=("Contact",), relationship=None),
        _ref("AccountId", "Account", "Account", ""),
        _owner(),
        _f("Subject", "combobox"),
        _f("Description", "textarea"),
        _f("ActivityDate", "date"),
    ]


def _standard_schema() -> dict[str, list[FieldDef]]:
    return {
        "Account": [
            _f("Name", "string", required=True, nillable=False),
            _f("Website", "url"),
            _f("Industry", "picklist", length=255),
            _f("Type", "picklist", length=255),
            _f("Description", "textarea"),
            _owner(),
            _num("seats_purchased__c"),
            _num("seats_active__c"),
            _num("nps_score__c", precision=2),
            _f("onboarding_stage__c", "picklist"),
            _f("do_not_contact__c", "boolean"),
        ],
        "Contact": [
            _ref("AccountId", "Account", "Account"),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, required=True, nillable=False),
            _f("Name", "string", "", length=121, nillable=False),
            _f("Email", "email"),
            _f("Title", "string", length=128),
            _f("HasOptedOutOfEmail", "boolean"),
            _owner(),
        ],
        "Opportunity": [
            _ref("AccountId", "Account", "Account"),
            _owner(),
            _f("Name", "string", length=120, required=True, nillable=False),
            _f("StageName", "picklist", required=True, nillable=False),
            _f("IsClosed", "boolean", ""),
            _f("IsWon", "boolean", ""),
            _num("Amount", "currency", 18, 2),
            _f("CloseDate", "date", required=True, nillable=False),
            _num("Probability", "percent", 3, 0),
            _f("CurrencyIsoCode", "picklist", length=3),
            _f("Pricebook2Id", "reference", reference_to=("Pricebook2",), relationship=None),
            _f("HasOpportunityLineItem", "boolean", ""),
        ],
        "OpportunityLineItem": [
            _ref("OpportunityId", "Opportunity", "Opportunity", "c", required=True, nillable=False),
            _ref("PricebookEntryId", "PricebookEntry", "PricebookEntry", "c", required=True),
            _ref("Product2Id", "Product2", "Product2", ""),
            _f("ProductCode", "string", ""),
            _f("Name", "string", "", length=376),
            _num("Quantity", "double", 12, 2),
            _num("UnitPrice", "currency", 18, 2),
            _num("ListPrice", "currency", 18, 2, access=""),
            _num("TotalPrice", "currency", 18, 2, access=""),
            _f("ServiceDate", "date"),
            _f("Description", "string"),
            _f("Billing_Period__c", "picklist"),
        ],
        "Product2": [
            _f("Name", "string", required=True, nillable=False),
            _f("ProductCode", "string"),
            _f("Family", "picklist"),
            _f("IsActive", "boolean"),
            _f("Description", "textarea", length=4000),
            _num("Tier__c", precision=2),
        ],
        "PricebookEntry": [
            _f("Name", "string", "", nillable=False),
            _f(
                "Pricebook2Id",
                "reference",
                "c",
                reference_to=("Pricebook2",),
                relationship=None,
                required=True,
                nillable=False,
            ),
            _ref("Product2Id", "Product2", "Product2", "c", required=True, nillable=False),
            _f("ProductCode", "string", ""),
            _num("UnitPrice", "currency", 18, 2),
            _f("IsActive", "boolean"),
            _f("UseStandardPrice", "boolean"),
        ],
        "Asset": [
            _ref("AccountId", "Account", "Account"),
            _ref("Product2Id", "Product2", "Product2"),
            _owner(),
            _f("Name", "string", required=True, nillable=False),
            _num("Quantity", "double", 18, 2),
            _num("Price", "currency", 18, 2),
            _f("Status", "picklist"),
            _f("PurchaseDate", "date"),
            _f("InstallDate", "date"),
            _f("UsageEndDate", "date"),
        ],
        "Task": [
            *_activity_common(),
            _f("Status", "picklist", nillable=False),
            _f("Priority", "picklist", nillable=False),
            _f("IsClosed", "boolean", ""),
            _f("TaskSubtype", "picklist", "c"),
            _f("Type", "picklist", length=40),
            _f("CallType", "picklist", length=40),
            _f("CallDisposition", "string"),
            _f("CallDurationInSeconds", "int", precision=9),
            _f("CompletedDateTime", "datetime", ""),
            _f("Direction__c", "picklist"),
        ],
        "Event": [
            *_activity_common(),
            _f("StartDateTime", "datetime"),
            _f("EndDateTime", "datetime"),
            _f("ActivityDateTime", "datetime"),
            _f("DurationInMinutes", "int", precision=8),
            _f("IsAllDayEvent", "boolean"),
            _f("EventSubtype", "picklist", "c"),
            _f("Type", "picklist", length=40),
            _f("ShowAs", "picklist", length=40),
            _f("Outcome__c", "picklist"),
        ],
        "User": [
            _f("Username", "string", length=80, required=True, nillable=False),
            _f("Name", "string", "", length=121, nillable=False),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, required=True, nillable=False),
            _f("Email", "email", required=True, nillable=False),
            _f("IsActive", "boolean"),
            _f("UserType", "picklist", ""),
        ],
    }


_TOOLING_FIELDS: list[FieldDef] = [
    _f("Id", "id", "", nillable=False),
    _f("DeveloperName", "string", "", length=40),
    _f("TableEnumOrId", "string", "", length=40),
    _f("NamespacePrefix", "string", "", length=15),
    _f("Description", "textarea", ""),
    _f("CreatedDate", "datetime", "", nillable=False),
    _f("LastModifiedDate", "datetime", "", nillable=False),
]

# Metadata type -> (describe type, (length, precision, scale) defaults)
_METADATA_TYPES = {
    "Number": "double",
    "Percent": "percent",
    "Currency": "currency",
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "DateTime": "datetime",
    "Date": "date",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "Url": "url",
    "Email": "email",
}


class SObject:
    """One sObject type: its name, key prefix, fields (by lower-case name) and parent relationships."""

    def __init__(self, name: str, prefix: str, fields: Iterable[FieldDef], label: str | None = None) -> None:
        self.name = name
        self.prefix = prefix
        self.label = label or _label(name)
        self.fields: dict[str, FieldDef] = {}
        self.relationships: dict[str, tuple[str, str, str]] = {}  # lower rel -> (rel, fk, target)
        for fdef in fields:
            self.add(fdef)

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name.lower()] = fdef
        if fdef.relationship and len(fdef.reference_to) == 1:
            self.relationships[fdef.relationship.lower()] = (
                fdef.relationship,
                fdef.name,
                fdef.reference_to[0],
            )

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())


# ---- store --------------------------------------------------------------------------------------------


class Rec:
    """One record: its scenario source (None if created through the API) and written values."""

    __slots__ = ("created_ms", "deleted_ms", "id", "modified_ms", "over", "src")

    def __init__(self, id_: str, src: object | None, created_ms: int, modified_ms: int) -> None:
        self.id = id_
        self.src = src
        self.over: dict[str, Any] | None = None
        self.created_ms = created_ms
        self.modified_ms = modified_ms
        self.deleted_ms: int | None = None


@dataclass
class Table:
    """The records of one object: sorted ids and a sorted (SystemModstamp, Id) index, deleted ones too."""

    name: str
    recs: dict[str, Rec] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    modified: list[tuple[int, str]] = field(default_factory=list)
    deleted: list[tuple[int, str]] = field(default_factory=list)
    counter: int = 0

    def add(self, rec: Rec) -> None:
        self.recs[rec.id] = rec
        bisect.insort(self.ids, rec.id)
        bisect.insort(self.modified, (rec.modified_ms, rec.id))

    def live(self, id_: str) -> Rec | None:
        rec = self.recs.get(id_)
        return rec if rec is not None and rec.deleted_ms is None else None

    def _unindex(self, rec: Rec) -> None:
        key = (rec.modified_ms, rec.id)
        i = bisect.bisect_left(self.modified, key)
        if i < len(self.modified) and self.modified[i] == key:
            del self.modified[i]

    def touch(self, rec: Rec, ms: int) -> None:
        if rec.deleted_ms is not None:
            return
        self._unindex(rec)
        rec.modified_ms = ms
        bisect.insort(self.modified, (ms, rec.id))

    def delete(self, rec: Rec, ms: int) -> None:
        if rec.deleted_ms is not None:
            return
        self._unindex(rec)
        rec.modified_ms = ms
        rec.deleted_ms = ms
        bisect.insort(self.modified, (ms, rec.id))
        bisect.insort(self.deleted, (ms, rec.id))


Getter = Callable[[Any], Any]
Computed = Callable[[Rec], Any]
Row = Callable[[str], Any]


@dataclass
class _Column:
    """A selected field: a plain field, or one field of a parent reached through a relationship."""

    name: str
    ftype: str
    relationship: str | None = None
    fk: str | None = None
    target: str | None = None


@dataclass
class _Cursor:
    """An open query: what it asks and where each returned batch ended (so a retried page is identical)."""

    locator: str
    sobject: str
    tooling: bool
    all_rows: bool
    kind: str  # "modstamp" | "id" | "list"
    predicate: Callable[[Row], bool]
    columns: list[_Column]
    low: Any
    high: Any
    limit: int | None
    batch: int
    total: int
    positions: dict[int, tuple[str, Any]]
    snapshot: list[str] | None = None


# ---- the sandbox ----------------------------------------------------------------------------------------


class SalesforceSandbox:
    """The state of one emulated Salesforce org and the logic behind every route."""

    def __init__(self, scenario: Scenario, options: SandboxOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.runtime = SandboxRuntime(options, not_before=scenario.now)
        self.lock = threading.RLock()
        self.schema: dict[str, SObject] = {
            name: SObject(name, KEY_PREFIXES[name], [*_system_fields(name != "User"), *fields])
            for name, fields in _standard_schema().items()
        }
        self.tooling_schema: dict[str, SObject] = {
            "CustomField": SObject("CustomField", _TOOLING_PREFIX["CustomField"], _TOOLING_FIELDS)
        }
        self.tables: dict[str, Table] = {name: Table(name) for name in OBJECTS}
        self.tooling_tables: dict[str, Table] = {"CustomField": Table("CustomField")}
        self.ids: dict[str, str] = {}  # scenario key -> Salesforce id
        self.tokens: dict[str, int] = {}  # access token -> expiry (sandbox ms)
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.jwt_public_key: str | None = None  # None: the key of sandbox_keypair()
        self.org_id = make_id(_ORG_PREFIX, 1)
        self.pricebook_id = make_id(_PRICEBOOK_PREFIX, 1)
        self._locators = 0
        self._companies = {c.key: c for c in scenario.companies}
        self._products = {p.key: p for p in scenario.products}
        self._deals = {d.key: d for d in scenario.deals}
        self._getters: dict[str, dict[str, Getter]] = {}
        self._computed: dict[str, dict[str, Computed]] = {}
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load(scenario)
        finally:
            if gc_was_enabled:
                gc.enable()
        self.admin_user = self.tables["User"].ids[0] if self.tables["User"].ids else make_id("005", 1)
        self._init_getters()
        self._init_custom_field_rows()

    # -- loading

    def _new_id(self, table: Table) -> str:
        table.counter += 1
        return make_id(KEY_PREFIXES.get(table.name) or _TOOLING_PREFIX[table.name], table.counter)

    def _put(self, otype: str, key: str | None, src: object | None, created: int, modified: int) -> Rec:
        table = self.tables[otype]
        rec = Rec(self._new_id(table), src, created, max(created, modified))
        table.recs[rec.id] = rec
        if key is not None:
            self.ids[key] = rec.id
        return rec

    def _load(self, sc: Scenario) -> None:
        now = _ms(sc.now)
        long_ago = now - 6 * 365 * _DAY
        for owner in sc.owners:
            self._put("User", owner.key, owner, long_ago, long_ago + 30 * _DAY)
        for product in sc.products:
            self._put("Product2", product.key, product, long_ago, now - 200 * _DAY)
        for product in sc.products:
            self._put("PricebookEntry", f"pbe:{product.key}", product, long_ago, now - 200 * _DAY)
        for company in sc.companies:
            self._put("Account", company.key, company, _ms(company.created_at), _ms(company.updated_at))
        for contact in sc.contacts:
            self._put("Contact", contact.key, contact, _ms(contact.created_at), _ms(contact.updated_at))
        for deal in sc.deals:
            self._put("Opportunity", deal.key, deal, _ms(deal.created_at), _ms(deal.updated_at))
        for item in sc.line_items:
            deal = self._deals[item.deal_key]
            updated = _ms(item.updated_at)
            self._put("OpportunityLineItem", item.key, item, min(_ms(deal.created_at), updated), updated)
        for asset in self._derive_assets(sc):
            self._put("Asset", None, asset, asset.created_ms, asset.modified_ms)
        for act in sc.activities:
            updated = _ms(act.updated_at)
            created = min(_ms(act.occurred_at), updated)
            self._put("Event" if act.kind == "meeting" else "Task", act.key, act, created, updated)
        for table in self.tables.values():
            table.ids = sorted(table.recs)
            table.modified = sorted((r.modified_ms, r.id) for r in table.recs.values())

    def _derive_assets(self, sc: Scenario) -> list[_AssetSrc]:
        """What each account owns: per product, the latest closed-won opportunity's line items."""
        items_by_deal: dict[str, list[SLineItem]] = {}
        for item in sc.line_items:
            items_by_deal.setdefault(item.deal_key, []).append(item)
        latest: dict[tuple[str, str], SDeal] = {}
        for deal in sc.deals:
            if deal.stage != "closedwon":
                continue
            for item in items_by_deal.get(deal.key, []):
                k = (deal.company_key, item.product_key)
                if k not in latest or latest[k].close_date <= deal.close_date:
                    latest[k] = deal
        now = _ms(sc.now)
        out: list[_AssetSrc] = []
        for (company_key, product_key), deal in sorted(latest.items(), key=lambda kv: (kv[0], kv[1].key)):
            lines = [i for i in items_by_deal[deal.key] if i.product_key == product_key]
            close = _ms(deal.close_date)
            period = lines[0].billing_period
            out.append(
                _AssetSrc(
                    company_key=company_key,
                    product_key=product_key,
                    quantity=float(sum(i.quantity for i in lines)),
                    price=lines[0].unit_price,
                    purchased_ms=close,
                    usage_end_ms=close + 365 * _DAY if period == "P12M" else None,
                    status="Purchased" if now - close < 30 * _DAY else "Installed",
                    created_ms=close,
                    modified_ms=max(close, _ms(deal.updated_at)),
                )
            )
        return out

    def _init_getters(self) -> None:
        ids, companies, products = self.ids, self._companies, self._products

        def owner(src: Any) -> str:
            return ids[src.owner_key]

        def opt(value: int | None) -> float | None:
            return None if value is None else float(value)

        def contact_company(src: SContact) -> SCompany:
            return companies[src.company_key]

        def li_product(src: SLineItem) -> SProduct:
            return products[src.product_key]

        def task_status(src: SActivity) -> str:
            if src.kind == "task":
                return "Completed" if src.status == "COMPLETED" else "Not Started"
            return "Completed"

        def direction(src: SActivity) -> str | None:
            if src.kind not in ("call", "email"):
                return None
            return "Inbound" if src.direction == "inbound" else "Outbound"

        def seq(src: SActivity) -> int:
            return int(src.key.rsplit("-", 1)[-1])

        account: dict[str, Getter] = {
            "Name": lambda s: s.name,
            "Website": lambda s: f"https://{s.domain}",
            "Industry": lambda s: _INDUSTRIES.get(s.industry, "Other"),
            "Type": lambda s: "Customer - Direct",
            "OwnerId": owner,
            "seats_purchased__c": lambda s: opt(s.seats_purchased),
            "seats_active__c": lambda s: opt(s.seats_active),
            "nps_score__c": lambda s: opt(s.nps_score),
            "onboarding_stage__c": lambda s: s.onboarding_stage,
            "do_not_contact__c": lambda s: s.do_not_contact,
        }
        contact: dict[str, Getter] = {
            "AccountId": lambda s: ids[s.company_key],
            "FirstName": lambda s: s.first_name,
            "LastName": lambda s: s.last_name,
            "Email": lambda s: s.email,
            "OwnerId": lambda s: ids[contact_company(s).owner_key],
            "HasOptedOutOfEmail": lambda s: contact_company(s).do_not_contact,
        }
        opportunity: dict[str, Getter] = {
            "AccountId": lambda s: ids[s.company_key],
            "OwnerId": owner,
            "Name": lambda s: s.name,
            "StageName": lambda s: _STAGES.get(s.stage, "Prospecting"),
            "Amount": lambda s: float(s.amount),
            "CloseDate": lambda s: _sf_date(_ms(s.close_date)),
            "CurrencyIsoCode": lambda s: "USD",
            "Pricebook2Id": lambda s: self.pricebook_id,
            "HasOpportunityLineItem": lambda s: True,
        }
        line_item: dict[str, Getter] = {
            "OpportunityId": lambda s: ids[s.deal_key],
            "PricebookEntryId": lambda s: ids[f"pbe:{s.product_key}"],
            "Quantity": lambda s: float(s.quantity),
            "UnitPrice": lambda s: float(s.unit_price),
            "ServiceDate": lambda s: _sf_date(_ms(self._deals[s.deal_key].close_date)),
            "Billing_Period__c": lambda s: _PERIODS.get(s.billing_period, s.billing_period),
            "Description": lambda s: f"{li_product(s).name} x {s.quantity}",
        }
        product: dict[str, Getter] = {
            "Name": lambda s: s.name,
            "ProductCode": lambda s: s.sku,
            "Family": lambda s: s.family,
            "IsActive": lambda s: True,
            "Description": lambda s: f"{s.name} ({s.family}, tier {s.tier})",
            "Tier__c": lambda s: float(s.tier),
        }
        pricebook_entry: dict[str, Getter] = {
            "Pricebook2Id": lambda s: self.pricebook_id,
            "Product2Id": lambda s: ids[s.key],
            "UnitPrice": lambda s: float(s.unit_price),
            "IsActive": lambda s: True,
            "UseStandardPrice": lambda s: False,
        }
        asset: dict[str, Getter] = {
            "AccountId": lambda s: ids[s.company_key],
            "Product2Id": lambda s: ids[s.product_key],
            "OwnerId": lambda s: ids[companies[s.company_key].owner_key],
            "Name": lambda s: products[s.product_key].name,
            "Quantity": lambda s: s.quantity,
            "Price": lambda s: float(s.price),
            "Status": lambda s: s.status,
            "PurchaseDate": lambda s: _sf_date(s.purchased_ms),
            "InstallDate": lambda s: _sf_date(s.purchased_ms),
            "UsageEndDate": lambda s: None if s.usage_end_ms is None else _sf_date(s.usage_end_ms),
        }
        activity: dict[str, Getter] = {
            "WhatId": lambda s: ids[s.company_key],
            "WhoId": lambda s: ids[s.contact_key] if s.contact_key else None,
            "OwnerId": owner,
            "Subject": lambda s: s.subject,
            "Description": lambda s: s.body,
            "ActivityDate": lambda s: _sf_date(_ms(s.occurred_at)),
        }
        task: dict[str, Getter] = {
            **activity,
            "Status": task_status,
            "Priority": lambda s: _PRIORITIES[seq(s) % 4] if s.kind == "task" else "Normal",
            "TaskSubtype": lambda s: _TASK_SUBTYPE[s.kind],
            "Type": lambda s: _TASK_TYPE[s.kind],
            "CallType": lambda s: direction(s) if s.kind == "call" else None,
            "CallDisposition": lambda s: (
                _DISPOSITIONS.get(s.outcome or "", "Connected") if s.kind == "call" else None
            ),
            "CallDurationInSeconds": lambda s: (
                ((60 + seq(s) % 900) if s.outcome in ("connected", "complaint") else 0)
                if s.kind == "call"
                else None
            ),
            "CompletedDateTime": lambda s: _ms(s.occurred_at) if task_status(s) == "Completed" else None,
            "Direction__c": direction,
        }
        event: dict[str, Getter] = {
            **activity,
            "StartDateTime": lambda s: _ms(s.occurred_at),
            "EndDateTime": lambda s: _ms(s.occurred_at) + 30 * 60_000,
            "ActivityDateTime": lambda s: _ms(s.occurred_at),
            "DurationInMinutes": lambda s: 30,
            "IsAllDayEvent": lambda s: False,
            "EventSubtype": lambda s: "Event",
            "Type": lambda s: "Meeting",
            "ShowAs": lambda s: "Busy",
            "Outcome__c": lambda s: _MEETING_OUTCOMES.get(s.outcome or "", "Completed"),
        }
        user: dict[str, Getter] = {
            "Username": lambda s: s.email.replace("@", ".sbx@", 1),
            "FirstName": lambda s: s.first_name,
            "LastName": lambda s: s.last_name,
            "Email": lambda s: s.email,
            "IsActive": lambda s: True,
            "UserType": lambda s: "Standard",
        }
        self._getters = {
            "Account": account,
            "Contact": contact,
            "Opportunity": opportunity,
            "OpportunityLineItem": line_item,
            "Product2": product,
            "PricebookEntry": pricebook_entry,
            "Asset": asset,
            "Task": task,
            "Event": event,
            "User": user,
            "CustomField": {},
        }

        v = self.value

        def full_name(otype: str) -> Computed:
            def name(rec: Rec) -> str:
                first = v(otype, rec, "FirstName")
                last = v(otype, rec, "LastName") or ""
                return f"{first} {last}" if first else str(last)

            return name

        def via(otype: str, fk: str, target: str, fname: str) -> Computed:
            def parent_value(rec: Rec) -> Any:
                pid = v(otype, rec, fk)
                parent = self.tables[target].recs.get(pid) if isinstance(pid, str) else None
                return None if parent is None else v(target, parent, fname)

            return parent_value

        def activity_account(otype: str) -> Computed:
            def account_id(rec: Rec) -> str | None:
                what = v(otype, rec, "WhatId")
                if not isinstance(what, str):
                    return None
                if what.startswith(KEY_PREFIXES["Account"]):
                    return what
                for parent_type in ("Opportunity", "Asset"):
                    if what.startswith(KEY_PREFIXES[parent_type]):
                        parent = self.tables[parent_type].recs.get(what)
                        return None if parent is None else v(parent_type, parent, "AccountId")
                return None

            return account_id

        def li_name(rec: Rec) -> str:
            opp = via("OpportunityLineItem", "OpportunityId", "Opportunity", "Name")(rec)
            prod = via("OpportunityLineItem", "PricebookEntryId", "PricebookEntry", "Name")(rec)
            return f"{opp} {prod}"

        def li_total(rec: Rec) -> float | None:
            qty = v("OpportunityLineItem", rec, "Quantity")
            price = v("OpportunityLineItem", rec, "UnitPrice")
            return None if qty is None or price is None else round(float(qty) * float(price), 2)

        def stage(rec: Rec) -> str:
            return str(v("Opportunity", rec, "StageName") or "")

        self._computed = {
            "Account": {},
            "Contact": {"Name": full_name("Contact")},
            "User": {"Name": full_name("User")},
            "Opportunity": {
                "IsClosed": lambda r: stage(r) in ("Closed Won", "Closed Lost"),
                "IsWon": lambda r: stage(r) == "Closed Won",
                "Probability": lambda r: _PROBABILITY.get(stage(r)),
            },
            "OpportunityLineItem": {
                "Product2Id": via("OpportunityLineItem", "PricebookEntryId", "PricebookEntry", "Product2Id"),
                "ProductCode": via(
                    "OpportunityLineItem", "PricebookEntryId", "PricebookEntry", "ProductCode"
                ),
                "ListPrice": via("OpportunityLineItem", "PricebookEntryId", "PricebookEntry", "UnitPrice"),
                "Name": li_name,
                "TotalPrice": li_total,
            },
            "Product2": {},
            "PricebookEntry": {
                "Name": via("PricebookEntry", "Product2Id", "Product2", "Name"),
                "ProductCode": via("PricebookEntry", "Product2Id", "Product2", "ProductCode"),
            },
            "Asset": {},
            "Task": {
                "AccountId": activity_account("Task"),
                "IsClosed": lambda r: v("Task", r, "Status") == "Completed",
            },
            "Event": {"AccountId": activity_account("Event")},
            "CustomField": {},
        }

    def _init_custom_field_rows(self) -> None:
        stamp = _ms(self.scenario.now) - 900 * _DAY
        for otype, sobj in self.schema.items():
            for fdef in sobj.fields.values():
                if fdef.custom:
                    self._add_custom_field_row(otype, fdef.name, stamp)
        for table in self.tooling_tables.values():
            table.ids.sort()
            table.modified.sort()

    def _add_custom_field_row(self, table_enum: str, name: str, ms: int) -> Rec:
        table = self.tooling_tables["CustomField"]
        rec = Rec(self._new_id(table), None, ms, ms)
        rec.over = {
            "DeveloperName": name.removesuffix("__c"),
            "TableEnumOrId": table_enum,
            "NamespacePrefix": None,
            "Description": None,
        }
        table.add(rec)
        return rec

    # -- reading

    def value(self, otype: str, rec: Rec, fname: str) -> Any:
        """One field's internal value (datetimes as epoch ms, dates as ``YYYY-MM-DD``)."""
        over = rec.over
        if over is not None and fname in over:
            return over[fname]
        if fname == "Id":
            return rec.id
        if fname in _MODSTAMP_FIELDS:
            return rec.modified_ms
        if fname == "CreatedDate":
            return rec.created_ms
        if fname == "IsDeleted":
            return rec.deleted_ms is not None
        if fname in ("CreatedById", "LastModifiedById"):
            return self.admin_user
        computed = self._computed[otype].get(fname)
        if computed is not None:
            return computed(rec)
        if rec.src is not None:
            getter = self._getters[otype].get(fname)
            if getter is not None:
                return getter(rec.src)
        fdef = self._sobject(otype).field(fname)
        if fdef is not None and fdef.type == "boolean":
            return False
        return None

    def _sobject(self, otype: str) -> SObject:
        return self.schema.get(otype) or self.tooling_schema[otype]

    @staticmethod
    def render(ftype: str, value: Any) -> Any:
        if value is None:
            return None
        if ftype == "datetime":
            return sf_datetime(int(value))
        return value

    def _attributes(self, otype: str, id_: str, version: str, tooling: bool) -> dict[str, str]:
        base = f"/services/data/{version}/tooling" if tooling else f"/services/data/{version}"
        return {"type": otype, "url": f"{base}/sobjects/{otype}/{id_}"}

    def record_json(
        self, otype: str, rec: Rec, columns: list[_Column], version: str, tooling: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self._attributes(otype, rec.id, version, tooling)}
        parents: dict[str, Rec | None] = {}
        for col in columns:
            if col.relationship is None:
                out[col.name] = self.render(col.ftype, self.value(otype, rec, col.name))
                continue
            assert col.fk is not None and col.target is not None
            if col.relationship not in parents:
                pid = self.value(otype, rec, col.fk)
                parent = self.tables[col.target].live(pid) if isinstance(pid, str) else None
                parents[col.relationship] = parent
                out[col.relationship] = (
                    None
                    if parent is None
                    else {"attributes": self._attributes(col.target, parent.id, version, False)}
                )
            parent = parents[col.relationship]
            if parent is not None:
                out[col.relationship][col.name] = self.render(
                    col.ftype, self.value(col.target, parent, col.name)
                )
        return out

    # -- in-process helpers (tests) and /__sandbox routes

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def _table(self, otype: str) -> Table:
        for name, table in self.tables.items():
            if name.lower() == otype.lower():
                return table
        raise KeyError(f"unknown sObject {otype!r}")

    def touch(
        self,
        otype: str = "Account",
        count: int | None = None,
        ids: Iterable[str] | None = None,
        *,
        same_ms: bool = True,
    ) -> list[str]:
        """Move SystemModstamp/LastModifiedDate of ``count`` records (lowest ids first) or ``ids`` to now."""
        with self.lock:
            table = self._table(otype)
            chosen = list(ids) if ids is not None else [i for i in table.ids if table.live(i)][: count or 0]
            now = self.now_ms()
            done: list[str] = []
            for n, raw in enumerate(chosen):
                rec = table.live(id15_to_18(raw))
                if rec is None:
                    continue
                table.touch(rec, now if same_ms else now + n)
                done.append(rec.id)
            return done

    def delete(self, otype: str, ids: Iterable[str] | None = None, count: int | None = None) -> list[str]:
        """Delete records (to the recycle bin): gone from query, visible in queryAll and getDeleted."""
        with self.lock:
            table = self._table(otype)
            chosen = list(ids) if ids is not None else [i for i in table.ids if table.live(i)][: count or 0]
            now = self.now_ms()
            done: list[str] = []
            for raw in chosen:
                rec = table.live(id15_to_18(raw))
                if rec is not None:
                    table.delete(rec, now)
                    done.append(rec.id)
            return done

    def set_fields(self, otype: str, id_: str, values: dict[str, Any]) -> dict[str, Any]:
        """Set field values as a user would in the UI (read-only fields too); SystemModstamp moves."""
        with self.lock:
            table = self._table(otype)
            sobj = self.schema[table.name]
            rec = table.live(id15_to_18(id_))
            if rec is None:
                raise KeyError(f"{table.name}/{id_}")
            clean: dict[str, Any] = {}
            for name, raw in values.items():
                fdef = sobj.field(name)
                if fdef is None or fdef.name in ("Id", *_MODSTAMP_FIELDS, "IsDeleted"):
                    raise KeyError(f"{table.name} has no settable field {name!r}")
                try:
                    clean[fdef.name] = self._coerce(fdef, raw)
                except _Fail as exc:
                    raise ValueError(f"{table.name}.{fdef.name}: {exc}") from None
            rec.over = {**(rec.over or {}), **clean}
            table.touch(rec, self.now_ms())
            columns = [_Column(sobj.fields[n.lower()].name, sobj.fields[n.lower()].type) for n in clean]
            return self.record_json(table.name, rec, [_Column("Id", "id"), *columns], "v62.0")

    def salesforce_id(self, key: str) -> str:
        """The Salesforce id of a scenario record (``co-000001``, ``ct-...``, ``owner-0001``...)."""
        return self.ids[key]

    def planted(self) -> dict[str, str]:
        """Account Id -> persona."""
        return {self.ids[key]: persona for key, persona in self.scenario.planted.items()}

    def expire_tokens(self) -> int:
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)

    # -- auth

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() in ("bearer", "oauth") and token:
            if secrets.compare_digest(token, self.options.token):
                return None
            expiry = self.tokens.get(token)
            if expiry is not None and self.now_ms() < expiry:
                return None
        response = _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        response.headers["WWW-Authenticate"] = "Token"
        return response

    def issue_token(self, form: dict[str, str], instance_url: str) -> Response:
        def oauth_error(error: str, description: str, status: int = 400) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", "")
            if not assertion:
                return oauth_error("invalid_grant", "invalid assertion")
            try:
                claims = jwt.decode(
                    assertion,
                    self.jwt_public_key or sandbox_keypair().public_pem,
                    algorithms=["RS256"],
                    options={"require": ["exp", "iss", "aud", "sub"], "verify_aud": False},
                    leeway=5,
                )
            except jwt.ExpiredSignatureError:
                return oauth_error("invalid_grant", "expired assertion")
            except jwt.PyJWTError:
                return oauth_error("invalid_grant", "invalid assertion")
            if claims.get("iss") != self.options.client_id:
                return oauth_error("invalid_client_id", "client identifier invalid")
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if not any(isinstance(a, str) and a.startswith("http") for a in audiences):
                return oauth_error("invalid_grant", "audience is invalid")
            if not str(claims.get("sub") or "").strip():
                return oauth_error("invalid_grant", "user hasn't approved this consumer")
        elif grant in ("refresh_token", "client_credentials"):
            if form.get("client_id") != self.options.client_id:
                return oauth_error("invalid_client_id", "client identifier invalid")
            if not secrets.compare_digest(form.get("client_secret", ""), self.options.client_secret):
                return oauth_error("invalid_client", "invalid client credentials")
            if grant == "refresh_token" and not secrets.compare_digest(
                form.get("refresh_token", ""), self.options.refresh_token
            ):
                return oauth_error("invalid_grant", "expired access/refresh token")
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self.lock:
            issued = self.now_ms()
            self.tokens[token] = issued + self.options.access_token_ttl_s * 1000
        identity = f"{instance_url}/id/{self.org_id}/{self.admin_user}"
        issued_at = str(issued)
        signature = base64.b64encode(
            hmac.new(
                self.options.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return JSONResponse(
            {
                "access_token": token,
                "scope": "api",
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
            }
        )

    # -- SOQL

    def _resolver(self, sobj: SObject, schema: dict[str, SObject]) -> Callable[[str], tuple[str, str]]:
        def resolve(raw: str) -> tuple[str, str]:
            if "." in raw:
                rel_raw, fname = raw.split(".", 1)
                rel = sobj.relationships.get(rel_raw.lower())
                if rel is None:
                    raise SoqlError(
                        f"Didn't understand relationship '{rel_raw}' in field path. If you are attempting "
                        "to use a custom relationship, be sure to append the '__r' after the custom "
                        "relationship name.",
                        "INVALID_FIELD",
                    )
                target = schema[rel[2]]
                fdef = target.field(fname)
                if fdef is None:
                    raise SoqlError(f"No such column '{fname}' on entity '{target.name}'.", "INVALID_FIELD")
                return f"{rel[0]}.{fdef.name}", fdef.type
            fdef = sobj.field(raw)
            if fdef is None:
                raise SoqlError(
                    f"No such column '{raw}' on entity '{sobj.name}'. If you are attempting to use a "
                    "custom field, be sure to append the '__c' after the custom field name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                    "INVALID_FIELD",
                )
            return fdef.name, fdef.type

        return resolve

    def _row(self, otype: str, rec: Rec, sobj: SObject) -> Row:
        def row(path: str) -> Any:
            if "." not in path:
                return self.value(otype, rec, path)
            rel, fname = path.split(".", 1)
            _rel, fk, target = sobj.relationships[rel.lower()]
            pid = self.value(otype, rec, fk)
            parent = self.tables[target].live(pid) if isinstance(pid, str) else None
            return None if parent is None else self.value(target, parent, fname)

        return row

    def open_query(self, text: str, *, all_rows: bool, tooling: bool, batch: int) -> _Cursor:
        query = parse_soql(text)
        schema = self.tooling_schema if tooling else self.schema
        tables = self.tooling_tables if tooling else self.tables
        sobj = next((s for n, s in schema.items() if n.lower() == query.sobject.lower()), None)
        if sobj is None:
            raise SoqlError(
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
                "INVALID_TYPE",
            )
        resolve = self._resolver(sobj, schema)
        columns: list[_Column] = []
        for raw in query.fields:
            path, ftype = resolve(raw)
            if "." in path:
                rel, fname = path.split(".", 1)
                _r, fk, target = sobj.relationships[rel.lower()]
                columns.append(_Column(fname, ftype, rel, fk, target))
            else:
                columns.append(_Column(path, ftype))
        for raw in referenced_fields(query.where):
            resolve(raw)
        typed, predicate = compile_where(query.where, resolve)
        order = [(resolve(o.field), o) for o in query.order_by]
        order_paths = [(path, o.desc) for (path, _t), o in order]
        table = tables[sobj.name]
        kind = "list"
        low: Any = None
        high: Any = None
        if not order_paths or order_paths == [("Id", False)]:
            kind = "id"
            low, high = range_bounds(typed, frozenset({"Id"}))
        elif order_paths[0] in (("SystemModstamp", False), ("LastModifiedDate", False)) and order_paths[
            1:
        ] in (
            [],
            [("Id", False)],
        ):
            kind = "modstamp"
            low, high = range_bounds(typed, _MODSTAMP_FIELDS)
        self._locators += 1
        locator = make_id(_LOCATOR_PREFIX, self._locators)
        cursor = _Cursor(
            locator=locator,
            sobject=sobj.name,
            tooling=tooling,
            all_rows=all_rows,
            kind=kind,
            predicate=predicate,
            columns=columns,
            low=low,
            high=high,
            limit=query.limit,
            batch=batch,
            total=0,
            positions={},
        )
        if kind == "list":
            cursor.snapshot = self._sorted_matches(cursor, table, sobj, query, order)
            cursor.total = len(cursor.snapshot)
            cursor.positions[0] = ("at", 0)
        else:
            cursor.total = self._count(cursor, table, sobj, typed)
            start: Any = (low if low is not None else -1, "") if kind == "modstamp" else (low or "")
            cursor.positions[0] = ("left", start)
        if query.limit is not None:
            cursor.total = min(cursor.total, query.limit)
        return cursor

    def _matches(self, cursor: _Cursor, table: Table, sobj: SObject, rec: Rec) -> bool:
        if rec.deleted_ms is not None and not cursor.all_rows:
            return False
        return cursor.predicate(self._row(table.name, rec, sobj))

    def _count(self, cursor: _Cursor, table: Table, sobj: SObject, typed: TExpr | None) -> int:
        pure = _pure_modstamp_range(typed) if cursor.kind == "modstamp" else None
        if cursor.kind == "modstamp" and (typed is None or pure is not None):
            lo, lo_incl, hi, hi_incl = pure or (None, True, None, True)

            def span(index: list[tuple[int, str]]) -> int:
                start = 0 if lo is None else bisect.bisect_left(index, (lo if lo_incl else lo + 1, ""))
                end = len(index) if hi is None else bisect.bisect_left(index, (hi + 1 if hi_incl else hi, ""))
                return max(0, end - start)

            total = span(table.modified)
            return total if cursor.all_rows else total - span(table.deleted)
        if cursor.kind == "id" and typed is None:
            return len(table.ids) if cursor.all_rows else len(table.ids) - len(table.deleted)
        count = 0
        for rec in self._scan(cursor, table, ("left", self._start_key(cursor))):
            if self._matches(cursor, table, sobj, rec):
                count += 1
                if cursor.limit is not None and count >= cursor.limit:
                    break
        return count

    @staticmethod
    def _start_key(cursor: _Cursor) -> Any:
        if cursor.kind == "modstamp":
            return (cursor.low if cursor.low is not None else -1, "")
        return cursor.low or ""

    def _scan(self, cursor: _Cursor, table: Table, position: tuple[str, Any]) -> Iterable[Rec]:
        """Records from ``position`` in index order until past the query's upper bound."""
        side, key = position
        if cursor.kind == "modstamp":
            index = table.modified
            i = bisect.bisect_left(index, key) if side == "left" else bisect.bisect_right(index, key)
            while i < len(index):
                ms, id_ = index[i]
                if cursor.high is not None and ms > cursor.high:
                    return
                yield table.recs[id_]
                i += 1
        else:
            ids = table.ids
            i = bisect.bisect_left(ids, key) if side == "left" else bisect.bisect_right(ids, key)
            while i < len(ids):
                id_ = ids[i]
                if cursor.high is not None and id_ > cursor.high:
                    return
                yield table.recs[id_]
                i += 1

    def _sorted_matches(
        self, cursor: _Cursor, table: Table, sobj: SObject, query: Query, order: list[Any]
    ) -> list[str]:
        recs = [table.recs[i] for i in table.ids if self._matches(cursor, table, sobj, table.recs[i])]
        rows = {rec.id: self._row(table.name, rec, sobj) for rec in recs}
        for (path, ftype), item in reversed(order):
            # Nulls go first or last whatever the direction (reverse=True flips the rank too).
            null_rank = int(item.nulls_last) if not item.desc else int(not item.nulls_last)

            def key(rec: Rec, path: str = path, ftype: str = ftype, null_rank: int = null_rank) -> Any:
                value = rows[rec.id](path)
                if value is None:
                    return (null_rank, 0)
                if isinstance(value, str) and ftype not in ("id", "reference"):
                    value = value.casefold()
                return (1 - null_rank, value)

            recs.sort(key=key, reverse=item.desc)
        ids = [r.id for r in recs]
        return ids[: query.limit] if query.limit is not None else ids

    def fetch(self, cursor: _Cursor, offset: int, version: str, base: str) -> dict[str, Any]:
        """One batch of an open query, starting ``offset`` records in."""
        position = cursor.positions.get(offset)
        if position is None:
            raise _Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        table = (self.tooling_tables if cursor.tooling else self.tables)[cursor.sobject]
        sobj = self._sobject(cursor.sobject)
        want = cursor.batch
        if cursor.limit is not None:
            want = max(0, min(want, cursor.limit - offset))
        records: list[dict[str, Any]] = []
        exhausted = True
        if cursor.kind == "list":
            assert cursor.snapshot is not None
            at = int(position[1])
            chunk = cursor.snapshot[at : at + want]
            for id_ in chunk:
                rec = table.recs.get(id_)
                if rec is not None:
                    records.append(
                        self.record_json(cursor.sobject, rec, cursor.columns, version, cursor.tooling)
                    )
            new_position: tuple[str, Any] = ("at", at + len(chunk))
            exhausted = at + len(chunk) >= len(cursor.snapshot)
        else:
            new_position = position
            if want > 0:
                for rec in self._scan(cursor, table, position):
                    new_position = (
                        "right",
                        (rec.modified_ms, rec.id) if cursor.kind == "modstamp" else rec.id,
                    )
                    if self._matches(cursor, table, sobj, rec):
                        records.append(
                            self.record_json(cursor.sobject, rec, cursor.columns, version, cursor.tooling)
                        )
                        if len(records) >= want:
                            exhausted = False
                            break
        next_offset = offset + len(records)
        done = exhausted or next_offset >= cursor.total
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        if not done:
            cursor.positions[next_offset] = new_position
            body["nextRecordsUrl"] = f"{base}/{cursor.locator}-{next_offset}"
        # A finished cursor stays (until evicted) so a retried last page answers the same.
        body["records"] = records
        return body

    def remember(self, cursor: _Cursor) -> None:
        self.cursors[cursor.locator] = cursor
        while len(self.cursors) > _MAX_CURSORS:
            self.cursors.popitem(last=False)

    def query(self, request: Request, *, all_rows: bool, tooling: bool = False) -> Response:
        version = str(request.path_params["version"])
        text = request.query_params.get("q")
        if text is None:
            raise _Fail(400, "MALFORMED_QUERY", "A query string has to be specified")
        batch = _batch_size(request.headers.get("sforce-query-options"))
        try:
            cursor = self.open_query(text, all_rows=all_rows, tooling=tooling, batch=batch)
        except SoqlError as exc:
            raise _Fail(400, exc.error_code, exc.message) from None
        self.remember(cursor)
        base = f"/services/data/{version}/tooling/query" if tooling else f"/services/data/{version}/query"
        body = self.fetch(cursor, 0, version, base)
        return JSONResponse(_tooling_shape(body, cursor) if tooling else body)

    def query_more(self, request: Request, *, tooling: bool = False) -> Response:
        version = str(request.path_params["version"])
        raw = str(request.path_params["locator"])
        locator, _, offset = raw.rpartition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit() or cursor.tooling != tooling:
            raise _Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        base = f"/services/data/{version}/tooling/query" if tooling else f"/services/data/{version}/query"
        body = self.fetch(cursor, int(offset), version, base)
        return JSONResponse(_tooling_shape(body, cursor) if tooling else body)

    # -- getDeleted

    def get_deleted(self, request: Request) -> Response:
        otype = self._known(str(request.path_params["sobject"]))
        params = request.query_params
        for name in ("start", "end"):
            if not params.get(name):
                raise _Fail(400, "MISSING_ARGUMENT", f"Missing required parameter: {name}")
        start = parse_datetime_ms(params["start"])
        end = parse_datetime_ms(params["end"])
        if start is None or end is None:
            raise _Fail(
                400,
                "INVALID_REPLICATION_DATE",
                "start and end must be ISO 8601 datetimes (YYYY-MM-DDThh:mm:ss+hh:mm)",
            )
        # The API ignores the seconds portion of both bounds.
        start -= start % 60_000
        end -= end % 60_000
        now = self.now_ms()
        earliest = now - _DELETED_WINDOW_MS
        earliest -= earliest % 60_000
        if start >= end:
            raise _Fail(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        if start < earliest:
            raise _Fail(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than 15 days ago; earliest available: {sf_datetime(earliest)}",
            )
        covered = min(end, now)
        table = self.tables[otype]
        lo = bisect.bisect_left(table.deleted, (start, ""))
        hi = bisect.bisect_right(table.deleted, (covered, "\uffff"))
        deleted = [{"id": id_, "deletedDate": sf_datetime(ms)} for ms, id_ in table.deleted[lo:hi]]
        return JSONResponse(
            {
                "deletedRecords": deleted,
                "earliestDateAvailable": sf_datetime(earliest),
                "latestDateCovered": sf_datetime(covered),
            }
        )

    def _known(self, raw: str) -> str:
        for name in self.schema:
            if name.lower() == raw.lower():
                return name
        raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")

    # -- describe, limits, versions

    def describe(self, request: Request) -> Response:
        otype = self._known(str(request.path_params["sobject"]))
        version = str(request.path_params["version"])
        sobj = self.schema[otype]
        base = f"/services/data/{version}/sobjects/{otype}"
        return JSONResponse(
            {
                **_global_entry(sobj, version),
                "fields": [f.describe() for f in sobj.fields.values()],
                "childRelationships": [],
                "recordTypeInfos": [],
                "urls": {
                    "sobject": base,
                    "describe": f"{base}/describe",
                    "rowTemplate": f"{base}/{{ID}}",
                },
            }
        )

    def describe_global(self, request: Request) -> Response:
        version = str(request.path_params["version"])
        return JSONResponse(
            {
                "encoding": "UTF-8",
                "maxBatchSize": _COLLECTION_MAX,
                "sobjects": [_global_entry(s, version) for s in self.schema.values()],
            }
        )

    def limits(self) -> Response:
        daily = self.runtime.daily
        return JSONResponse(
            {
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                "DailyApiRequests": {"Max": daily.limit, "Remaining": max(0, daily.limit - daily.used)},
                "DailyAsyncApexExecutions": {"Max": 250_000, "Remaining": 250_000},
                "DailyBulkApiBatches": {"Max": 15_000, "Remaining": 15_000},
                "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": 10_000},
                "DataStorageMB": {"Max": 5_120, "Remaining": 5_000},
                "FileStorageMB": {"Max": 20_480, "Remaining": 20_400},
                "HourlyTimeBasedWorkflow": {"Max": 1_000, "Remaining": 1_000},
            }
        )

    # -- writes: sObject Collections

    def _coerce(self, fdef: FieldDef, raw: Any) -> Any:
        """The stored form of a written value; raises ``_Fail`` (JSON_PARSER_ERROR) on a type mismatch."""
        if raw is None:
            return None
        ftype = fdef.type

        def bad() -> _Fail:
            kind = {"double": "double", "currency": "double", "percent": "double", "int": "int"}.get(
                ftype, ftype
            )
            return _Fail(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {type(raw).__name__} value {raw!r} "
                f"or request may be missing a required field ({fdef.name})",
            )

        if ftype == "boolean":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            raise bad()
        if ftype in _NUMERIC:
            if isinstance(raw, bool):
                raise bad()
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise bad() from None
            if ftype == "int":
                if not number.is_integer():
                    raise bad()
                return int(number)
            return round(number, fdef.scale) if fdef.scale else number
        if ftype == "datetime":
            ms = parse_datetime_ms(raw) if isinstance(raw, str) else None
            if ms is None:
                raise bad()
            return ms
        if ftype == "date":
            if not isinstance(raw, str):
                raise bad()
            try:
                return date.fromisoformat(raw[:10]).isoformat()
            except ValueError:
                raise bad() from None
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int | float):
            return str(raw)
        if not isinstance(raw, str):
            raise bad()
        if ftype in ("reference", "id"):
            return id15_to_18(raw) if _ID_SHAPE.fullmatch(raw) else raw
        return raw

    def _check_reference(self, fdef: FieldDef, value: str) -> dict[str, Any] | None:
        if not _ID_SHAPE.fullmatch(value):
            return _record_error(
                "MALFORMED_ID", f"{_label(fdef.name)}: id value of incorrect type: {value}", [fdef.name]
            )
        if "Pricebook2" in fdef.reference_to:
            if value != self.pricebook_id:
                return _record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            return None
        targets = [t for t in fdef.reference_to if value.startswith(KEY_PREFIXES.get(t, "~"))]
        if not targets:
            return _record_error(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{_label(fdef.name)} ID: id value of incorrect type: {value}",
                [fdef.name],
            )
        if self.tables[targets[0]].live(value) is None:
            return _record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
        return None

    def _validate_values(
        self, sobj: SObject, values: dict[str, Any], *, create: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        clean: dict[str, Any] = {}
        for raw_name, raw in values.items():
            fdef = sobj.field(raw_name)
            if fdef is None:
                return {}, _record_error(
                    "INVALID_FIELD", f"No such column '{raw_name}' on sobject of type {sobj.name}", [raw_name]
                )
            if fdef.name == "Id":
                message = "cannot specify Id in an insert call" if create else "Id is read-only"
                return {}, _record_error("INVALID_FIELD", message, ["Id"])
            if not (fdef.createable if create else fdef.updateable):
                return {}, _record_error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {fdef.name}. Please check the security settings of "
                    "this field and verify that it is read/write for your profile or permission set.",
                    [fdef.name],
                )
            clean[fdef.name] = self._coerce(fdef, raw)
        for name, value in clean.items():
            fdef = sobj.fields[name.lower()]
            if value is None:
                if not fdef.nillable or fdef.required:
                    return {}, _record_error(
                        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]
                    )
                continue
            if fdef.type in _STRINGY and fdef.length and len(str(value)) > fdef.length:
                return {}, _record_error(
                    "STRING_TOO_LONG",
                    f"{_label(name)}: data value too large: {str(value)[:40]} (max length={fdef.length})",
                    [name],
                )
            if (
                fdef.type in ("double", "currency", "percent")
                and fdef.precision
                and abs(float(value)) >= 10 ** (fdef.precision - fdef.scale)
            ):
                return {}, _record_error(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{_label(name)}: value outside of valid range on numeric field: {value}",
                    [name],
                )
            if fdef.type == "reference":
                problem = self._check_reference(fdef, str(value))
                if problem is not None:
                    return {}, problem
        if create:
            missing = [
                f.name
                for f in sobj.fields.values()
                if f.required and f.createable and clean.get(f.name) is None
            ]
            if missing:
                return {}, _record_error(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
        return clean, None

    def _defaults(self, otype: str, values: dict[str, Any], now: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sobj = self.schema[otype]
        if sobj.field("OwnerId") is not None:
            out["OwnerId"] = self.admin_user
        for fdef in sobj.fields.values():
            if fdef.type == "boolean" and fdef.createable:
                out[fdef.name] = False
        if otype == "Task":
            out.update(Status="Not Started", Priority="Normal", TaskSubtype="Task")
        elif otype == "Event":
            start = values.get("StartDateTime") or values.get("ActivityDateTime") or now
            minutes = int(values.get("DurationInMinutes") or 30)
            out.update(
                EventSubtype="Event",
                StartDateTime=start,
                ActivityDateTime=start,
                EndDateTime=start + minutes * 60_000,
                DurationInMinutes=minutes,
                ActivityDate=_sf_date(start),
            )
        elif otype == "Product2":
            out["IsActive"] = False
        elif otype == "Opportunity":
            out.update(Pricebook2Id=self.pricebook_id, CurrencyIsoCode="USD")
        if otype == "Task" and values.get("Status") == "Completed":
            out["CompletedDateTime"] = now
        return out

    def collections(self, request: Request, body: Any, *, create: bool) -> Response:
        path_type = request.path_params.get("sobject")
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _Fail(400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' array")
        records: list[Any] = body["records"]
        if len(records) > _COLLECTION_MAX:
            raise _Fail(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {_COLLECTION_MAX} records into this call",
            )
        all_or_none = body.get("allOrNone", False)
        if isinstance(all_or_none, str):
            all_or_none = all_or_none.lower() == "true"
        now = self.now_ms()
        planned: list[tuple[str, Rec | None, dict[str, Any]] | dict[str, Any]] = []
        for index, item in enumerate(records):
            if not isinstance(item, dict):
                raise _Fail(400, "JSON_PARSER_ERROR", f"Record {index} is not a JSON object")
            attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
            raw_type = str((attributes or {}).get("type") or path_type or "")
            if not raw_type:
                raise _Fail(400, "INVALID_TYPE", f"No SObject Type defined in the record at index {index}")
            otype = next((n for n in self.schema if n.lower() == raw_type.lower()), None)
            if otype is None:
                raise _Fail(400, "INVALID_TYPE", f"sObject type '{raw_type}' is not supported.")
            sobj = self.schema[otype]
            values = {k: v for k, v in item.items() if k != "attributes" and (create or k.lower() != "id")}
            rec: Rec | None = None
            if not create:
                raw_id = item.get("id", item.get("Id"))
                if not raw_id:
                    planned.append(
                        _record_error("MISSING_ARGUMENT", "Id not specified in an update call", [])
                    )
                    continue
                raw_id = str(raw_id)
                if not _ID_SHAPE.fullmatch(raw_id) or not raw_id.startswith(sobj.prefix):
                    planned.append(
                        _record_error(
                            "MALFORMED_ID", f"{otype} ID: id value of incorrect type: {raw_id}", ["Id"]
                        )
                    )
                    continue
                rec = self.tables[otype].recs.get(id15_to_18(raw_id))
                if rec is None:
                    planned.append(
                        _record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                    )
                    continue
                if rec.deleted_ms is not None:
                    planned.append(_record_error("ENTITY_IS_DELETED", "entity is deleted", []))
                    continue
            clean, problem = self._validate_values(sobj, values, create=create)
            if problem is not None:
                planned.append(problem)
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                target = rec.id if rec is not None else "a new record"
                planned.append(
                    _record_error(
                        "UNABLE_TO_LOCK_ROW",
                        f"unable to obtain exclusive access to this record or 1 records: {target}",
                        [],
                    )
                )
                continue
            planned.append((otype, rec, clean))
        failed = any(isinstance(p, dict) for p in planned)
        results: list[dict[str, Any]] = []
        if all_or_none and failed:
            for p in planned:
                if isinstance(p, dict):
                    results.append(p)
                else:
                    results.append(
                        _record_error(
                            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "Record rolled back because not all records were valid and the request was "
                            "using AllOrNone header",
                            [],
                        )
                    )
            return JSONResponse(results)
        for p in planned:
            if isinstance(p, dict):
                results.append(p)
                continue
            otype, rec, clean = p
            table = self.tables[otype]
            if rec is None:
                rec = Rec(self._new_id(table), None, now, now)
                rec.over = {**self._defaults(otype, clean, now), **clean}
                table.add(rec)
            else:
                rec.over = {**(rec.over or {}), **clean}
                if otype == "Task" and clean.get("Status") == "Completed":
                    rec.over.setdefault("CompletedDateTime", now)
                table.touch(rec, now)
            results.append({"id": rec.id, "success": True, "errors": []})
        return JSONResponse(results)

    # -- Tooling API: CustomField

    def create_custom_field(self, request: Request, body: Any) -> Response:
        kind = str(request.path_params["sobject"])
        if kind != "CustomField":
            raise _Fail(404, "NOT_FOUND", f"The requested resource does not exist: tooling sObject {kind}")
        if not isinstance(body, dict):
            raise _Fail(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        full_name = str(body.get("FullName") or "")
        metadata = body.get("Metadata")
        if not isinstance(metadata, dict):
            raise _Fail(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]")
        match = re.fullmatch(
            r"([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*)__c", full_name
        )
        if match is None or len(match.group(2)) > 40:
            raise _Fail(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"FullName '{full_name}' must look like Object.Field_Name__c (letters, digits and single "
                "underscores, at most 40 characters before __c)",
            )
        table_enum = next(
            (n for n in (*self.schema, "Activity") if n.lower() == match.group(1).lower()), None
        )
        if table_enum is None:
            raise _Fail(400, "FIELD_INTEGRITY_EXCEPTION", f"Unknown object in FullName: {match.group(1)}")
        developer_name = match.group(2)
        targets = ["Task", "Event"] if table_enum == "Activity" else [table_enum]
        rows = self.tooling_tables["CustomField"]
        for rec in rows.recs.values():
            over = rec.over or {}
            same_table = over.get("TableEnumOrId") in (table_enum, "Activity") or (
                table_enum == "Activity" and over.get("TableEnumOrId") in targets
            )
            if same_table and str(over.get("DeveloperName", "")).lower() == developer_name.lower():
                raise _Fail(
                    400,
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {developer_name} on {table_enum}.",
                )
        if any(self.schema[t].field(f"{developer_name}__c") is not None for t in targets):
            raise _Fail(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {developer_name} on {table_enum}.",
            )
        fdef = _field_from_metadata(f"{developer_name}__c", metadata)
        for t in targets:
            self.schema[t].add(fdef)
        rec = self._add_custom_field_row(table_enum, developer_name, self.now_ms())
        if metadata.get("description"):
            assert rec.over is not None
            rec.over["Description"] = str(metadata["description"])
        return JSONResponse(
            {"id": rec.id, "success": True, "errors": [], "warnings": [], "infos": []}, status_code=201
        )


@dataclass(frozen=True, slots=True)
class _AssetSrc:
    company_key: str
    product_key: str
    quantity: float
    price: float
    purchased_ms: int
    usage_end_ms: int | None
    status: str
    created_ms: int
    modified_ms: int


def _record_error(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}


def _field_from_metadata(name: str, metadata: dict[str, Any]) -> FieldDef:
    label = metadata.get("label")
    if not isinstance(label, str) or not label.strip():
        raise _Fail(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [label]")
    if len(label) > 40:
        raise _Fail(400, "FIELD_INTEGRITY_EXCEPTION", "Field Label: data value too large (max length=40)")
    mtype = metadata.get("type")
    ftype = _METADATA_TYPES.get(str(mtype))
    if ftype is None:
        raise _Fail(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"Field type {mtype!r} is not supported; use one of {', '.join(_METADATA_TYPES)}",
        )

    def number(key: str, low: int, high: int) -> int:
        raw = metadata.get(key)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
            raise _Fail(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{key.title()}: You must enter a value between {low} and {high}",
            )
        return int(raw)

    length = precision = scale = 0
    if mtype == "Text":
        length = number("length", 1, 255)
    elif mtype == "LongTextArea":
        length = number("length", 256, 131_072)
        number("visibleLines", 2, 50)
    elif mtype == "TextArea":
        length = 255
    elif ftype in ("double", "percent", "currency"):
        precision = number("precision", 1, 18)
        scale = number("scale", 0, precision) if "scale" in metadata else 0
    elif mtype in ("Url",):
        length = 255
    elif mtype == "Email":
        length = 80
    elif mtype == "Picklist":
        length = 255
    return FieldDef(
        name,
        ftype,
        length=length,
        precision=precision,
        scale=scale,
        custom=True,
        label=label,
        nillable=ftype != "boolean",
    )


def _pure_modstamp_range(typed: TExpr | None) -> tuple[int | None, bool, int | None, bool] | None:
    """(low, low inclusive, high, high inclusive) if ``typed`` only bounds SystemModstamp; else None."""
    if typed is None:
        return None
    conds: list[TCond] = []
    if isinstance(typed, TCond):
        conds = [typed]
    elif isinstance(typed, TBool) and typed.op == "AND" and all(isinstance(i, TCond) for i in typed.items):
        conds = [i for i in typed.items if isinstance(i, TCond)]
    else:
        return None
    lo: int | None = None
    hi: int | None = None
    lo_incl = hi_incl = True
    for c in conds:
        if c.path not in _MODSTAMP_FIELDS or c.op not in ("=", ">", ">=", "<", "<=") or c.values[0] is None:
            return None
        v = int(c.values[0])
        if c.op in (">", ">=", "="):
            incl = c.op != ">"
            if lo is None or v > lo or (v == lo and not incl):
                lo, lo_incl = v, incl
        if c.op in ("<", "<=", "="):
            incl = c.op != "<"
            if hi is None or v < hi or (v == hi and not incl):
                hi, hi_incl = v, incl
    return lo, lo_incl, hi, hi_incl


def _batch_size(header: str | None) -> int:
    """``Sforce-Query-Options: batchSize=N`` (200-2000) or the default 2000."""
    if not header:
        return BATCH_SIZE
    match = re.search(r"batchSize\s*=\s*(\d+)", header, re.IGNORECASE)
    if match is None:
        return BATCH_SIZE
    return max(_MIN_BATCH, min(BATCH_SIZE, int(match.group(1))))


def _tooling_shape(body: dict[str, Any], cursor: _Cursor) -> dict[str, Any]:
    return {
        "size": len(body["records"]),
        "totalSize": body["totalSize"],
        "done": body["done"],
        "queryLocator": None if body["done"] else cursor.locator,
        "entityTypeName": cursor.sobject,
        **({"nextRecordsUrl": body["nextRecordsUrl"]} if "nextRecordsUrl" in body else {}),
        "records": body["records"],
    }


def _global_entry(sobj: SObject, version: str) -> dict[str, Any]:
    base = f"/services/data/{version}/sobjects/{sobj.name}"
    return {
        "name": sobj.name,
        "label": sobj.label,
        "labelPlural": f"{sobj.label}s" if not sobj.label.endswith("y") else f"{sobj.label[:-1]}ies",
        "keyPrefix": sobj.prefix,
        "custom": False,
        "createable": sobj.name != "User",
        "updateable": True,
        "deletable": sobj.name != "User",
        "queryable": True,
        "retrieveable": True,
        "replicateable": True,
        "searchable": True,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


# ---- HTTP wiring -----------------------------------------------------------------------------------------

Handler = Callable[[Request, Any], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
_ROUTE_SEGMENT = re.compile(r"/([^/]+)")


def _route_name(request: Request) -> str:
    def generic(match: re.Match[str]) -> str:
        segment = match.group(1)
        if _VERSION.fullmatch(segment):
            return "/{version}"
        if any(ch.isdigit() for ch in segment) and re.fullmatch(r"[A-Za-z0-9]{15,18}(?:-\d+)?", segment):
            return "/{id}"
        return match.group()

    path = _ROUTE_SEGMENT.sub(generic, request.url.path)
    return f"{request.method} {path.rstrip('/') or '/'}"


class _Wiring:
    """Wraps API handlers with version checks, auth, faults, the daily limit, headers, stats and the lock."""

    def __init__(self, sb: SalesforceSandbox) -> None:
        self.sb = sb

    def api(self, handler: Handler, *, body: bool = False) -> Endpoint:
        runtime = self.sb.runtime

        async def endpoint(request: Request) -> Response:
            response = await self._run(request, handler, body)
            runtime.stats.record(_route_name(request), response.status_code)
            return response

        return endpoint

    async def _run(self, request: Request, handler: Handler, body: bool) -> Response:
        sb, runtime = self.sb, self.sb.runtime
        version = request.path_params.get("version")
        if version is not None and not _valid_version(str(version)):
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        with sb.lock:
            denied = sb.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                return _error(
                    503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable; too many requests."
                )
            if fault == "error_502":
                return _error(
                    500,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you contact support: "
                    f"{random.randrange(10**9)}-{random.randrange(10**5)} (-{random.randrange(10**9)})",
                )
            if fault == "error_503":
                return _error(503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please retry.")
            return DroppedResponse()
        daily = runtime.daily.acquire()
        if not daily.allowed:
            limited = _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return _limit_header(limited, runtime.daily.used, runtime.daily.limit)
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = _INVALID
            if payload is _INVALID or payload is None:
                invalid = _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
                return _limit_header(invalid, runtime.daily.used, runtime.daily.limit)
        # A page allocates thousands of short-lived dicts; with a big org in memory, the cyclic GC would
        # rescan every stored record each time (tenfold slower pages). Refcounting frees the page anyway.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with sb.lock:
                response = handler(request, payload)
        except _Fail as exc:
            response = exc.response
        finally:
            if gc_was_enabled:
                gc.enable()
        return _limit_header(response, runtime.daily.used, runtime.daily.limit)


_INVALID = object()


def _limit_header(response: Response, used: int, limit: int) -> Response:
    response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
    return response


def _valid_version(raw: str) -> bool:
    match = _VERSION.fullmatch(raw)
    return match is not None and int(match.group(1)) >= 20


def create_app(scenario: Scenario, options: SandboxOptions) -> Starlette:
    """The Salesforce emulator as a Starlette app; ``app.state.sandbox`` is its :class:`SalesforceSandbox`."""
    from crm_upsell_salesforce.sandbox_outcomes import outcome_routes

    sb = SalesforceSandbox(scenario, options)
    w = _Wiring(sb)
    data = "/services/data/{version}"

    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed without python-multipart
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        for k, v in request.query_params.items():
            form.setdefault(k, v)
        instance_url = f"{request.url.scheme}://{request.url.netloc}"
        response = sb.issue_token(form, instance_url)
        sb.runtime.stats.record("POST /services/oauth2/token", response.status_code)
        return response

    async def versions(request: Request) -> Response:
        return JSONResponse(
            [
                {"label": label, "url": f"/services/data/v{v}", "version": v}
                for v, label in _API_VERSIONS.items()
            ]
        )

    def resources(request: Request, _body: Any) -> Response:
        base = f"/services/data/{request.path_params['version']}"
        return JSONResponse(
            {
                name: f"{base}/{path}"
                for name, path in (
                    ("sobjects", "sobjects"),
                    ("query", "query"),
                    ("queryAll", "queryAll"),
                    ("limits", "limits"),
                    ("composite", "composite"),
                    ("tooling", "tooling"),
                )
            }
        )

    def both(path: str, endpoint: Endpoint, methods: list[str]) -> list[Route]:
        return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]

    routes = [
        Route("/services/oauth2/token", token, methods=["POST"]),
        *both("/services/data", versions, ["GET"]),
        *both(data, w.api(resources), ["GET"]),
        *both(data + "/limits", w.api(lambda r, b: sb.limits()), ["GET"]),
        *both(data + "/query", w.api(lambda r, b: sb.query(r, all_rows=False)), ["GET"]),
        *both(data + "/queryAll", w.api(lambda r, b: sb.query(r, all_rows=True)), ["GET"]),
        Route(data + "/query/{locator}", w.api(lambda r, b: sb.query_more(r)), methods=["GET"]),
        Route(data + "/queryAll/{locator}", w.api(lambda r, b: sb.query_more(r)), methods=["GET"]),
        *both(data + "/sobjects", w.api(lambda r, b: sb.describe_global(r)), ["GET"]),
        *both(data + "/sobjects/{sobject}/describe", w.api(lambda r, b: sb.describe(r)), ["GET"]),
        *both(data + "/sobjects/{sobject}/deleted", w.api(lambda r, b: sb.get_deleted(r)), ["GET"]),
        *both(
            data + "/composite/sobjects",
            w.api(lambda r, b: sb.collections(r, b, create=r.method == "POST"), body=True),
            ["POST", "PATCH"],
        ),
        Route(
            data + "/composite/sobjects/{sobject}",
            w.api(lambda r, b: sb.collections(r, b, create=False), body=True),
            methods=["PATCH"],
        ),
        *both(
            data + "/tooling/query", w.api(lambda r, b: sb.query(r, all_rows=False, tooling=True)), ["GET"]
        ),
        Route(
            data + "/tooling/query/{locator}",
            w.api(lambda r, b: sb.query_more(r, tooling=True)),
            methods=["GET"],
        ),
        *both(
            data + "/tooling/sobjects/{sobject}",
            w.api(lambda r, b: sb.create_custom_field(r, b), body=True),
            ["POST"],
        ),
        *control_routes(sb.runtime),
        *_salesforce_control_routes(sb),
        *outcome_routes(sb),  # POST /__sandbox/play-outcomes (sandbox_outcomes.py)
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(LatencyMiddleware, options=options, prefixes=("/services",))],
    )
    app.state.sandbox = sb
    return app


def _salesforce_control_routes(sb: SalesforceSandbox) -> list[Route]:
    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {}

    async def touch_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            ids = sb.touch(
                str(b.get("object", "Account")),
                count=b.get("count"),
                ids=b.get("ids"),
                same_ms=bool(b.get("same_ms", True)),
            )
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"ids": ids, "modified_at": sf_datetime(sb.now_ms())})

    async def delete_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            ids = sb.delete(str(b.get("object", "Account")), ids=b.get("ids"), count=b.get("count"))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"ids": ids, "deleted_at": sf_datetime(sb.now_ms())})

    async def set_fields_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            record = sb.set_fields(str(b.get("object", "Account")), str(b["id"]), dict(b.get("fields") or {}))
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.ids[k] for k in keys if k in sb.ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    return [
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/delete", delete_route, methods=["POST"]),
        Route("/__sandbox/set-fields", set_fields_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
    ]


# ---- module-level helpers for tests -----------------------------------------------------------------------


def sandbox_state(app: Starlette | SalesforceSandbox) -> SalesforceSandbox:
    """The :class:`SalesforceSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, SalesforceSandbox):
        return app
    state: SalesforceSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | SalesforceSandbox,
    sobject: str = "Account",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Move SystemModstamp of ``count`` records (lowest ids first) or ``ids`` to now, all the same ms."""
    return sandbox_state(app).touch(sobject, count, ids)


def delete(
    app: Starlette | SalesforceSandbox,
    sobject: str,
    ids: Iterable[str] | None = None,
    count: int | None = None,
) -> list[str]:
    """Delete records: they leave ``query``, stay in ``queryAll`` (IsDeleted = true) and ``getDeleted``."""
    return sandbox_state(app).delete(sobject, ids, count)


def set_fields(
    app: Starlette | SalesforceSandbox, sobject: str, record_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Set field values on one record as a user would (SystemModstamp moves)."""
    return sandbox_state(app).set_fields(sobject, record_id, values)


def salesforce_id(app: Starlette | SalesforceSandbox, key: str) -> str:
    """The Salesforce id given to a scenario key (``co-000001``, ``ct-0000001``, ``owner-0001``...)."""
    return sandbox_state(app).salesforce_id(key)
