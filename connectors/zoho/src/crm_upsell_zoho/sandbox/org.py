"""The Zoho sandbox's org: its users, modules and records loaded from a scenario, and how they read.

Field definitions come from :mod:`.schema`; written values are checked by :mod:`.values`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from crm_upsell_connector.sandbox.scenario import SActivity, Scenario, SCompany, SContact
from crm_upsell_zoho.sandbox.campaigns import add_campaigns
from crm_upsell_zoho.sandbox.inventory import add_inventory
from crm_upsell_zoho.sandbox.schema import define_modules
from crm_upsell_zoho.sandbox.store import (
    ACTIVITY_MODULES,
    CALL_RESULTS,
    DAY_MS,
    EPOCH,
    MODULES,
    ORG_PREFIX,
    PRIORITIES,
    PRODUCT_CATEGORIES,
    STAGES,
    FieldDef,
    ModuleDef,
    Rec,
    Table,
    User,
    industry,
    ms_of,
)

__all__ = ["Org", "note_html"]


def note_html(body: str) -> str:
    """A note body as Zoho's rich-text editor stores it: each sentence its own paragraph, the
    last two joined by a line break (``<div>..</div><div>..<br>..</div>``)."""
    parts = [p.strip() for p in body.replace("\n", " ").split(". ") if p.strip()]
    if len(parts) < 2:
        return f"<div>{html.escape(body)}</div>"
    *head, before, after = parts
    divs = "".join(f"<div>{html.escape(p)}</div>" for p in head)
    return f"{divs}<div>{html.escape(before)}<br>{html.escape(after)}</div>"


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
        #: Whether list reads return the line items asked for in ``fields`` (False emulates an org
        #: whose list reads leave them out: the connector then reads each record on its own).
        self.line_items_in_lists = True
        #: Deal id -> product ids on its Products related list ("Related Records").
        self.deal_products: dict[int, list[int]] = {}
        #: The org's currencies as the scenario sets them: ISO code -> units per home unit, the home
        #: currency (rate 1) first, then the others in the scenario's order.
        self.home_currency = scenario.home_currency
        self.currencies: dict[str, float] = {scenario.home_currency: 1.0}
        self.currencies.update(
            (code, rate) for code, rate in scenario.exchange_rates.items() if code != scenario.home_currency
        )
        now = ms_of(scenario.now)
        self.meta_ms = now - 1_500 * DAY_MS
        self._load_users(scenario, now)
        define_modules(self)
        self._define_getters()
        self._load_records(scenario, now)
        #: Campaign id -> (contact id, Member_Status) of its members (see campaigns.py).
        self.campaign_members: dict[int, list[tuple[int, str]]] = {}
        add_campaigns(self)
        add_inventory(self, now)

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
        moment = (EPOCH + timedelta(milliseconds=ms)).astimezone(tz)
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
                now - (1_400 - i) * DAY_MS,
            )
            self.users.append(user)
            self.user_by_id[user.id] = user
            self.ids[owner.key] = user.id

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
                "Industry": lambda s: industry(s.industry),
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
                # The scenario's amount is already in the deal's currency, with the deal's rate (units
                # of that currency per home unit): rendered as they are, never converted again.
                "Amount": lambda s: s.amount,
                "Currency": lambda s: s.currency,
                "Exchange_Rate": lambda s: s.exchange_rate,
                "Closing_Date": lambda s: date(s.close_date),
                "Account_Name": lambda s: ids[s.company_key],
            },
            "Products": {
                "Owner": lambda s: admin_id,
                "Product_Name": lambda s: s.name,
                "Product_Code": lambda s: s.sku,
                "Product_Category": lambda s: PRODUCT_CATEGORIES.get(s.family, s.family),
                "Unit_Price": lambda s: s.unit_price,
                "Product_Active": lambda s: True,
            },
            "Tasks": {
                "Owner": owner,
                "Subject": lambda s: s.subject,
                "Description": lambda s: s.body,
                "Due_Date": lambda s: date(s.occurred_at),
                "Status": lambda s: "Completed" if s.status == "COMPLETED" else "Not Started",
                "Priority": lambda s: PRIORITIES[int(s.key[-3:]) % len(PRIORITIES)],
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
                "Note_Content": lambda s: note_html(s.body),
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
            t["Products"].recs[pid] = Rec(pid, product, now - 1_800 * DAY_MS, now - 200 * DAY_MS)
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
            products = self.deal_products.setdefault(self.ids[item.deal_key], [])
            if self.ids[item.product_key] not in products:
                products.append(self.ids[item.product_key])
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
            return [self._render_row(module, rec, row) for row in value]
        return value

    def _render_row(self, module: str, rec: Rec, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(row["id"])}
        for key, value in row.items():
            if key == "id":
                continue
            if key == "Product_Name":
                product = self.lookup_json("Products", int(value)) if value is not None else None
                if product is not None and module != "Deals":
                    # An inventory line's product lookup carries its Product_Code (Zoho's v8 SDK
                    # line item product: id, name, Product_Code).
                    found = self.find("Products", int(value))
                    product["Product_Code"] = (
                        self.stored("Products", found, "Product_Code") if found else None
                    )
                out[key] = product
            else:
                out[key] = value
        out["Parent_Id"] = {"name": self.display_name(module, rec), "id": str(rec.id)}
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
            if fd.lookup_module == "*" and module != "Notes":
                out["$se_module"] = self.stored(module, rec, "$se_module")
        return out

    # -- writing values
