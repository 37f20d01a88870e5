"""The Zoho sandbox's in-memory org: module and field definitions, records, indexes and value coercion.

Records keep their scenario source and only store values written later, so 400,000 activities load in
seconds. Each module keeps three sorted indexes (id, ``(Modified_Time ms, id)``, ``(Created_Time ms, id)``)
so a page costs O(log n + page). Values are held in a "stored" form (lookups as int ids, datetimes as
epoch milliseconds, dates as ``YYYY-MM-DD``) and rendered in Zoho's JSON shapes by :meth:`Org.render`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from crm_upsell_connector.sandbox.scenario import (
    SActivity,
    Scenario,
    SCompany,
    SContact,
)

__all__ = [
    "MODULES",
    "DeletedRec",
    "FieldDef",
    "ModuleDef",
    "Org",
    "Rec",
    "Table",
    "api_name_from_label",
    "parse_zoho_time",
]

ORG_PREFIX = 5_725_767  # the first seven digits of every id, like a real Zoho org
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000

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
_PRIORITIES = ("High", "Normal", "Normal", "Low", "Highest", "Lowest")
_TASK_STATUSES = ("Not Started", "Deferred", "In Progress", "Completed", "Waiting for input")

_JSON_TYPES = {
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
# What POST /settings/fields accepts, with the default length Zoho gives each type.
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
SYSTEM_FIELDS = frozenset({"Created_Time", "Modified_Time", "Created_By", "Modified_By"})


def ms_of(value: datetime) -> int:
    return (value - _EPOCH) // _MS


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
    return (moment - _EPOCH) // _MS


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


class Org:
    """Every module, field and record of one emulated Zoho CRM org."""

    def __init__(self, scenario: Scenario, utc_offset_min: int = 0) -> None:
        self.scenario = scenario
        self.utc_offset_min = utc_offset_min
        self._next = ORG_PREFIX * 10**12 + 1_000
        self.users: list[User] = []
        self.user_by_id: dict[int, User] = {}
        self.ids: dict[str, int] = {}  # scenario key -> Zoho id
        self.modules: dict[str, ModuleDef] = {}
        self.tables: dict[str, Table] = {m: Table(m) for m in MODULES}
        self.deal_rows: dict[str, list[dict[str, Any]]] = {}
        now = ms_of(scenario.now)
        self.meta_ms = now - 1_500 * _DAY_MS
        self._load_users(scenario, now)
        self._define_modules()
        self._load_records(scenario, now)

    # -- ids and time

    def new_id(self) -> int:
        self._next += 1
        return self._next

    @property
    def admin(self) -> User:
        return self.users[0]

    def zt(self, ms: int) -> str:
        """Zoho's datetime format: seconds precision with the org's UTC offset."""
        tz = timezone(timedelta(minutes=self.utc_offset_min))
        moment = (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S%z")
        return f"{text[:-2]}:{text[-2:]}"

    # -- loading

    def _load_users(self, sc: Scenario, now: int) -> None:
        for i, owner in enumerate(sc.owners):
            user = User(
                self.new_id(),
                owner.key,
                owner.first_name,
                owner.last_name,
                owner.email,
                now - (1_400 - i) * _DAY_MS,
            )
            self.users.append(user)
            self.user_by_id[user.id] = user
            self.ids[owner.key] = user.id

    def _f(
        self,
        mod: ModuleDef,
        api_name: str,
        label: str,
        data_type: str,
        *,
        custom: bool = False,
        read_only: bool = False,
        mandatory: bool = False,
        options: Iterable[str] = (),
        lookup: str | None = None,
        length: int | None = None,
    ) -> None:
        mod.fields[api_name] = FieldDef(
            api_name,
            label,
            data_type,
            self.new_id(),
            custom=custom,
            read_only=read_only,
            mandatory=mandatory,
            length=length or CREATABLE_TYPES.get(data_type, 255),
            options=tuple(options),
            lookup_module=lookup,
            created_ms=self.meta_ms if custom else None,
            source="crm_ui" if custom else "default",
        )

    def _define_modules(self) -> None:
        spec = (
            ("Accounts", "Account", "Account_Name", "Account_Name"),
            ("Contacts", "Contact", "Full_Name", "Email"),
            ("Deals", "Deal", "Deal_Name", "Deal_Name"),
            ("Products", "Product", "Product_Name", "Product_Name"),
            ("Tasks", "Task", "Subject", None),
            ("Calls", "Call", "Subject", None),
            ("Events", "Event", "Event_Title", None),
            ("Notes", "Note", "Note_Title", None),
        )
        for name, singular, display, dup in spec:
            mod = ModuleDef(name, singular, self.new_id(), display, dup)
            self.modules[name] = mod
            self._f(mod, "Owner", f"{singular} Owner", "ownerlookup")
        m = self.modules
        a = m["Accounts"]
        self._f(a, "Account_Name", "Account Name", "text", mandatory=True)
        self._f(a, "Website", "Website", "website")
        industries = sorted({_industry(c.industry) for c in self.scenario.companies}) or ["Retail"]
        self._f(a, "Industry", "Industry", "picklist", options=industries)
        self._f(a, "Seats_Purchased", "Seats Purchased", "integer", custom=True)
        self._f(a, "Seats_Active", "Seats Active", "integer", custom=True)
        self._f(a, "NPS_Score", "NPS Score", "integer", custom=True)
        self._f(
            a,
            "Onboarding_Stage",
            "Onboarding Stage",
            "picklist",
            custom=True,
            options=("Kickoff", "Implementation", "Live"),
        )
        self._f(a, "Do_Not_Contact", "Do Not Contact", "boolean", custom=True)
        c = m["Contacts"]
        self._f(c, "First_Name", "First Name", "text", length=40)
        self._f(c, "Last_Name", "Last Name", "text", mandatory=True, length=80)
        self._f(c, "Full_Name", "Full Name", "text", read_only=True)
        self._f(c, "Email", "Email", "email")
        self._f(c, "Account_Name", "Account Name", "lookup", lookup="Accounts")
        d = m["Deals"]
        self._f(d, "Deal_Name", "Deal Name", "text", mandatory=True, length=120)
        self._f(d, "Stage", "Stage", "picklist", mandatory=True, options=tuple(STAGES.values()))
        self._f(d, "Amount", "Amount", "currency")
        self._f(d, "Closing_Date", "Closing Date", "date")
        self._f(d, "Account_Name", "Account Name", "lookup", lookup="Accounts")
        self._f(d, "Deal_Products", "Deal Products", "subform", custom=True)
        p = m["Products"]
        self._f(p, "Product_Name", "Product Name", "text", mandatory=True, length=200)
        self._f(p, "Product_Code", "Product Code", "text", length=40)
        self._f(p, "Product_Category", "Product Category", "picklist", options=PRODUCT_CATEGORIES.values())
        self._f(p, "Unit_Price", "Unit Price", "currency")
        self._f(p, "Product_Active", "Product Active", "boolean")
        self._f(p, "Tier", "Tier", "integer", custom=True)
        t = m["Tasks"]
        self._f(t, "Subject", "Subject", "text", mandatory=True)
        self._f(t, "Description", "Description", "textarea")
        self._f(t, "Due_Date", "Due Date", "date")
        self._f(t, "Status", "Status", "picklist", options=_TASK_STATUSES)
        self._f(t, "Priority", "Priority", "picklist", options=("Highest", "High", "Normal", "Low", "Lowest"))
        self._f(t, "What_Id", "Related To", "lookup", lookup="*")
        self._f(t, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
        k = m["Calls"]
        self._f(k, "Subject", "Subject", "text", mandatory=True)
        self._f(k, "Description", "Description", "textarea")
        self._f(
            k, "Call_Type", "Call Type", "picklist", mandatory=True, options=("Outbound", "Inbound", "Missed")
        )
        self._f(k, "Call_Start_Time", "Call Start Time", "datetime", mandatory=True)
        self._f(k, "Call_Duration", "Call Duration", "text", length=10)
        self._f(k, "Call_Result", "Call Result", "picklist", options=sorted(set(CALL_RESULTS.values())))
        self._f(k, "What_Id", "Related To", "lookup", lookup="*")
        self._f(k, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
        e = m["Events"]
        self._f(e, "Event_Title", "Title", "text", mandatory=True)
        self._f(e, "Description", "Description", "textarea")
        self._f(e, "Start_DateTime", "From", "datetime", mandatory=True)
        self._f(e, "End_DateTime", "To", "datetime", mandatory=True)
        self._f(e, "What_Id", "Related To", "lookup", lookup="*")
        self._f(e, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
        n = m["Notes"]
        self._f(n, "Note_Title", "Note Title", "text")
        self._f(n, "Note_Content", "Note Content", "textarea", mandatory=True)
        self._f(n, "Parent_Id", "Parent ID", "lookup", lookup="*", mandatory=True)
        for mod in m.values():
            self._f(mod, "Created_By", "Created By", "ownerlookup", read_only=True)
            self._f(mod, "Modified_By", "Modified By", "ownerlookup", read_only=True)
            self._f(mod, "Created_Time", "Created Time", "datetime", read_only=True)
            self._f(mod, "Modified_Time", "Modified Time", "datetime", read_only=True)
        self._define_getters()

    def _define_getters(self) -> None:
        ids, comp = self.ids, {c.key: c for c in self.scenario.companies}

        def owner(s: Any) -> int:
            return ids[s.owner_key]

        def company_owner(s: SContact) -> int:
            return ids[comp[s.company_key].owner_key]

        def what(s: SActivity) -> int:
            return ids[s.company_key]

        def who(s: SActivity) -> int | None:
            return ids[s.contact_key] if s.contact_key else None

        def date(moment: datetime) -> str:
            return moment.astimezone(timezone(timedelta(minutes=self.utc_offset_min))).strftime("%Y-%m-%d")

        def accounts(s: SCompany) -> str:
            return "Accounts"

        admin_id = self.admin.id
        g: dict[str, dict[str, Callable[[Any], Any]]] = {
            "Accounts": {
                "Owner": owner,
                "Account_Name": lambda s: s.name,
                "Website": lambda s: f"https://{s.domain}",
                "Industry": lambda s: _industry(s.industry),
                "Seats_Purchased": lambda s: s.seats_purchased,
                "Seats_Active": lambda s: s.seats_active,
                "NPS_Score": lambda s: s.nps_score,
                "Onboarding_Stage": lambda s: s.onboarding_stage.title() if s.onboarding_stage else None,
                "Do_Not_Contact": lambda s: s.do_not_contact,
            },
            "Contacts": {
                "Owner": company_owner,
                "First_Name": lambda s: s.first_name,
                "Last_Name": lambda s: s.last_name,
                "Email": lambda s: s.email,
                "Account_Name": lambda s: ids[s.company_key],
            },
            "Deals": {
                "Owner": owner,
                "Deal_Name": lambda s: s.name,
                "Stage": lambda s: STAGES.get(s.stage, s.stage),
                "Amount": lambda s: s.amount,
                "Closing_Date": lambda s: date(s.close_date),
                "Account_Name": lambda s: ids[s.company_key],
                "Deal_Products": lambda s: self.deal_rows.get(s.key, []),
            },
            "Products": {
                "Owner": lambda s: admin_id,
                "Product_Name": lambda s: s.name,
                "Product_Code": lambda s: s.sku,
                "Product_Category": lambda s: PRODUCT_CATEGORIES.get(s.family, s.family),
                "Unit_Price": lambda s: s.unit_price,
                "Product_Active": lambda s: True,
                "Tier": lambda s: s.tier,
            },
            "Tasks": {
                "Owner": owner,
                "Subject": lambda s: s.subject,
                "Description": lambda s: s.body,
                "Due_Date": lambda s: date(s.occurred_at),
                "Status": lambda s: "Completed" if s.status == "COMPLETED" else "Not Started",
                "Priority": lambda s: _PRIORITIES[int(s.key[-3:]) % len(_PRIORITIES)],
                "What_Id": what,
                "$se_module": accounts,
                "Who_Id": who,
            },
            "Calls": {
                "Owner": owner,
                "Subject": lambda s: s.subject,
                "Description": lambda s: s.body,
                "Call_Type": lambda s: "Inbound" if s.direction == "inbound" else "Outbound",
                "Call_Start_Time": lambda s: ms_of(s.occurred_at),
                "Call_Duration": lambda s: f"{int(s.key[-2:]) % 30 + 1:02d}:00",
                "Call_Result": lambda s: CALL_RESULTS.get(s.outcome or "", "Interested"),
                "What_Id": what,
                "$se_module": accounts,
                "Who_Id": who,
            },
            "Events": {
                "Owner": owner,
                "Event_Title": lambda s: s.subject,
                "Description": lambda s: s.body,
                "Start_DateTime": lambda s: ms_of(s.occurred_at),
                "End_DateTime": lambda s: ms_of(s.occurred_at) + 30 * 60_000,
                "What_Id": what,
                "$se_module": accounts,
                "Who_Id": who,
            },
            "Notes": {
                "Owner": owner,
                "Note_Title": lambda s: s.subject,
                "Note_Content": lambda s: s.body,
                "Parent_Id": what,
                "$se_module": accounts,
            },
        }
        for name, getters in g.items():
            mod = self.modules[name]
            own = getters["Owner"]
            mod.getters = {**getters, "Created_By": own, "Modified_By": own}

    def _load_records(self, sc: Scenario, now: int) -> None:
        t = self.tables
        for product in sc.products:
            pid = self.new_id()
            self.ids[product.key] = pid
            t["Products"].recs[pid] = Rec(pid, product, now - 1_800 * _DAY_MS, now - 200 * _DAY_MS)
        for company in sc.companies:
            cid = self.new_id()
            self.ids[company.key] = cid
            t["Accounts"].recs[cid] = Rec(cid, company, ms_of(company.created_at), ms_of(company.updated_at))
        for contact in sc.contacts:
            xid = self.new_id()
            self.ids[contact.key] = xid
            t["Contacts"].recs[xid] = Rec(xid, contact, ms_of(contact.created_at), ms_of(contact.updated_at))
        for deal in sc.deals:
            did = self.new_id()
            self.ids[deal.key] = did
            t["Deals"].recs[did] = Rec(did, deal, ms_of(deal.created_at), ms_of(deal.updated_at))
        for item in sc.line_items:
            row_id = self.new_id()
            self.ids[item.key] = row_id
            frequency = "Annually" if item.billing_period == "P12M" else "Monthly"
            self.deal_rows.setdefault(item.deal_key, []).append(
                {
                    "id": row_id,
                    "Product_Name": self.ids[item.product_key],
                    "Quantity": item.quantity,
                    "List_Price": item.unit_price,
                    "Billing_Frequency": frequency,
                }
            )
        for act in sc.activities:
            module = ACTIVITY_MODULES.get(act.kind)
            if module is None:  # Zoho keeps e-mails outside the record modules
                continue
            aid = self.new_id()
            self.ids[act.key] = aid
            updated = ms_of(act.updated_at)
            t[module].recs[aid] = Rec(aid, act, min(ms_of(act.occurred_at), updated), updated)
        for table in t.values():
            table.finish_load()

    # -- reading values

    def stored(self, module: str, rec: Rec, api_name: str) -> Any:
        """A field's value in stored form (lookup ids as int, datetimes as epoch ms)."""
        if rec.vals is not None and api_name in rec.vals:
            return rec.vals[api_name]
        if api_name == "Modified_Time":
            return rec.updated_ms
        if api_name == "Created_Time":
            return rec.created_ms
        if api_name == "Full_Name" and module == "Contacts":
            first = self.stored(module, rec, "First_Name")
            last = self.stored(module, rec, "Last_Name")
            return " ".join(p for p in (first, last) if p)
        if rec.src is None:
            return None
        getter = self.modules[module].getters.get(api_name)
        return getter(rec.src) if getter is not None else None

    def find(self, module: str, id_: int) -> Rec | None:
        return self.tables[module].recs.get(id_)

    def display_name(self, module: str, rec: Rec) -> str | None:
        value = self.stored(module, rec, self.modules[module].display_field)
        return None if value is None else str(value)

    def lookup_json(self, module: str | None, target: int) -> dict[str, Any] | None:
        if module is None or module not in self.tables:
            return None
        rec = self.find(module, target)
        if rec is None:
            return None
        return {"name": self.display_name(module, rec), "id": str(target)}

    def user_json(self, user_id: int | None, *, email: bool = True) -> dict[str, Any] | None:
        user = self.user_by_id.get(user_id) if user_id is not None else None
        if user is None:
            return None
        out: dict[str, Any] = {"name": user.full_name, "id": str(user.id)}
        if email:
            out["email"] = user.email
        return out

    def render_value(self, module: str, rec: Rec, fd: FieldDef) -> Any:
        value = self.stored(module, rec, fd.api_name)
        if value is None:
            return [] if fd.data_type == "subform" else None
        dt = fd.data_type
        if dt == "datetime":
            return self.zt(int(value))
        if dt == "ownerlookup":
            return self.user_json(int(value))
        if dt == "lookup":
            target_module = fd.lookup_module
            if target_module == "*":
                target_module = self.stored(module, rec, "$se_module")
            body = self.lookup_json(target_module, int(value))
            if body is not None and fd.api_name == "Parent_Id":
                body["module"] = {"api_name": target_module, "id": str(self.modules[str(target_module)].id)}
            return body
        if dt == "subform":
            return [self._render_row(rec, row) for row in value]
        return value

    def _render_row(self, rec: Rec, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(row["id"])}
        for key, value in row.items():
            if key == "id":
                continue
            if key == "Product_Name":
                out[key] = self.lookup_json("Products", int(value)) if value is not None else None
            else:
                out[key] = value
        out["Parent_Id"] = {"name": self.display_name("Deals", rec), "id": str(rec.id)}
        return out

    def render(self, module: str, rec: Rec, fields: Iterable[str]) -> dict[str, Any]:
        """The record as GET /{module} returns it: ``id`` plus the requested fields."""
        defs = self.modules[module].fields
        out: dict[str, Any] = {"id": str(rec.id)}
        for name in fields:
            if name == "id":
                continue
            if name == "$se_module":
                out[name] = self.stored(module, rec, "$se_module")
                continue
            fd = defs[name]
            out[name] = self.render_value(module, rec, fd)
            if fd.lookup_module == "*":
                out["$se_module"] = self.stored(module, rec, "$se_module")
        return out

    # -- writing values

    def coerce(self, module: str, fd: FieldDef, raw: Any, path: str, se_module: str | None) -> Any:
        """The stored form of a written value; raises :class:`WriteError` (INVALID_DATA)."""

        def invalid(expected: str | None = None, message: str = "invalid data") -> WriteError:
            details: dict[str, Any] = {"api_name": fd.api_name, "json_path": path}
            if expected is not None:
                details["expected_data_type"] = expected
            return WriteError("INVALID_DATA", message, **details)

        if raw is None:
            if fd.mandatory:
                raise WriteError(
                    "MANDATORY_NOT_FOUND", "required field not found", api_name=fd.api_name, json_path=path
                )
            return None
        dt = fd.data_type
        if dt in ("text", "textarea", "email", "website", "phone", "picklist"):
            if not isinstance(raw, str):
                raise invalid(dt)
            if len(raw) > fd.length:
                raise WriteError(
                    "INVALID_DATA",
                    "invalid data",
                    maximum_length=fd.length,
                    api_name=fd.api_name,
                    json_path=path,
                )
            if dt == "email" and raw and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", raw):
                raise invalid(dt)
            if dt == "picklist" and fd.options and raw not in fd.options:
                raise WriteError(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=fd.api_name,
                    json_path=path,
                    supported_values=list(fd.options),
                )
            if fd.mandatory and not raw.strip():
                raise WriteError(
                    "MANDATORY_NOT_FOUND", "required field not found", api_name=fd.api_name, json_path=path
                )
            return raw
        if dt in ("integer", "bigint"):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise invalid(dt)
            if dt == "integer" and not -(2**31) <= raw < 2**31:
                raise invalid(dt)
            return raw
        if dt in ("double", "currency", "percent", "decimal"):
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise invalid(dt)
            return raw
        if dt == "boolean":
            if not isinstance(raw, bool):
                raise invalid(dt)
            return raw
        if dt == "date":
            if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                raise invalid(dt)
            try:
                datetime.strptime(raw, "%Y-%m-%d")
            except ValueError:
                raise invalid(dt) from None
            return raw
        if dt == "datetime":
            # Zoho wants yyyy-MM-ddTHH:mm:ss with an explicit offset.
            if not isinstance(raw, str) or not re.fullmatch(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)", raw
            ):
                raise invalid(dt)
            ms = parse_zoho_time(raw)
            if ms is None:
                raise invalid(dt)
            return ms // 1000 * 1000
        if dt in ("lookup", "ownerlookup"):
            ref = raw.get("id") if isinstance(raw, dict) else raw
            if isinstance(ref, int) and not isinstance(ref, bool):
                ref = str(ref)
            if not isinstance(ref, str) or not ref.isdigit():
                raise invalid("jsonobject")
            target = int(ref)
            if dt == "ownerlookup":
                if target not in self.user_by_id:
                    raise invalid("jsonobject")
                return target
            target_module = fd.lookup_module if fd.lookup_module != "*" else se_module
            if target_module is None:
                raise WriteError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    api_name="$se_module",
                    json_path=path.rsplit(".", 1)[0] + ".$se_module",
                )
            if target_module not in self.tables or self.find(target_module, target) is None:
                raise invalid("jsonobject", "the related id given seems to be invalid")
            return target
        if dt == "subform":
            return self._coerce_rows(raw, path)
        raise invalid(dt)

    def _coerce_rows(self, raw: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise WriteError("INVALID_DATA", "invalid data", api_name="Deal_Products", json_path=path)
        rows: list[dict[str, Any]] = []
        allowed = {"id", "Product_Name", "Quantity", "List_Price", "Billing_Frequency"}
        for i, item in enumerate(raw):
            where = f"{path}[{i}]"
            if not isinstance(item, dict) or set(item) - allowed:
                bad = sorted(set(item) - allowed)[0] if isinstance(item, dict) else "Deal_Products"
                raise WriteError("INVALID_DATA", "invalid data", api_name=bad, json_path=f"{where}.{bad}")
            product = item.get("Product_Name")
            ref = product.get("id") if isinstance(product, dict) else product
            if not isinstance(ref, str) or not ref.isdigit() or self.find("Products", int(ref)) is None:
                raise WriteError(
                    "INVALID_DATA", "invalid data", api_name="Product_Name", json_path=f"{where}.Product_Name"
                )
            qty = item.get("Quantity", 1)
            price = item.get("List_Price", 0)
            if isinstance(qty, bool) or not isinstance(qty, int | float):
                raise WriteError(
                    "INVALID_DATA", "invalid data", api_name="Quantity", json_path=f"{where}.Quantity"
                )
            if isinstance(price, bool) or not isinstance(price, int | float):
                raise WriteError(
                    "INVALID_DATA", "invalid data", api_name="List_Price", json_path=f"{where}.List_Price"
                )
            row_id = item.get("id")
            rows.append(
                {
                    "id": int(row_id) if isinstance(row_id, str) and row_id.isdigit() else self.new_id(),
                    "Product_Name": int(ref),
                    "Quantity": qty,
                    "List_Price": price,
                    "Billing_Frequency": item.get("Billing_Frequency"),
                }
            )
        return rows

    def field_json(self, module: str, fd: FieldDef) -> dict[str, Any]:
        """One entry of GET /settings/fields."""
        lookup: dict[str, Any] = {}
        if fd.data_type == "lookup" and fd.lookup_module not in (None, "*"):
            target = self.modules[str(fd.lookup_module)]
            lookup = {"module": {"api_name": target.name, "id": str(target.id)}, "display_label": fd.label}
        return {
            "api_name": fd.api_name,
            "field_label": fd.label,
            "display_label": fd.label,
            "data_type": fd.data_type,
            "json_type": _JSON_TYPES.get(fd.data_type, "string"),
            "custom_field": fd.custom,
            "id": str(fd.id),
            "length": fd.length,
            "read_only": fd.read_only,
            "field_read_only": fd.read_only,
            "system_mandatory": fd.mandatory,
            "visible": True,
            "sortable": fd.data_type not in ("subform", "textarea"),
            "filterable": fd.data_type not in ("subform",),
            "unique": {},
            "created_source": fd.source,
            "created_time": self.zt(fd.created_ms) if fd.created_ms is not None else None,
            "modified_time": self.zt(fd.created_ms) if fd.created_ms is not None else None,
            "pick_list_values": [
                {"display_value": v, "actual_value": v, "id": str(fd.id + 1 + i), "type": "used"}
                for i, v in enumerate(fd.options)
            ],
            "lookup": lookup,
            "decimal_place": 2 if fd.data_type in ("currency", "double", "decimal") else None,
        }


def _industry(raw: str) -> str:
    return raw.replace("_", " ").title().replace(" And ", " and ")
