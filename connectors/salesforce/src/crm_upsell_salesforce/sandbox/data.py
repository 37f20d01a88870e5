"""The shared scenario loaded as Salesforce records: accounts, opportunities, activities and what they read as."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from crm_upsell_connector.sandbox.scenario import (
    SActivity,
    Scenario,
    SCompany,
    SContact,
    SDeal,
    SLineItem,
    SProduct,
)
from crm_upsell_connector.sandbox.scenario.deals import in_currency
from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    ARCHIVE_AFTER_DAYS,
    CURRENCY_OBJECTS,
    DAY,
    DISPOSITIONS,
    INDUSTRIES,
    KEY_PREFIXES,
    MEETING_OUTCOMES,
    PERIODS,
    PRIORITIES,
    PROBABILITY,
    SETUP_OBJECTS,
    STAGES,
    TASK_SUBTYPE,
    TASK_TYPE,
    sf_date,
    to_ms,
)
from crm_upsell_salesforce.sandbox.store import (
    Computed,
    Getter,
    Rec,
)


def pbe_key(product_key: str, currency: str) -> str:
    """The ``ids`` key of a product's standard price book entry in ``currency``."""
    return f"pbe:{product_key}:{currency}"


class ScenarioData(OrgBase):
    """Loading the scenario and the per-field getters over its records."""

    def _put(self, otype: str, key: str | None, src: object | None, created: int, modified: int) -> Rec:
        table = self.tables[otype]
        rec = Rec(self._new_id(table), src, created, max(created, modified))
        table.recs[rec.id] = rec
        if key is not None:
            self.ids[key] = rec.id
        return rec

    def _load(self, sc: Scenario) -> None:
        now = to_ms(sc.now)
        long_ago = now - 6 * 365 * DAY
        for owner in sc.owners:
            self._put("User", owner.key, owner, long_ago, long_ago + 30 * DAY)
        for product in sc.products:
            self._put("Product2", product.key, product, long_ago, now - 200 * DAY)
        # One standard price book entry per product and active currency, each priced in its currency
        # (Object Reference "PricebookEntry", CurrencyIsoCode; an opportunity product's entry is in
        # its opportunity's currency: Object Reference "OpportunityLineItem").
        for iso in sc.currencies():
            for product in sc.products:
                price = _PriceSrc(product, iso, in_currency(product.unit_price, iso))
                self._put("PricebookEntry", pbe_key(product.key, iso), price, long_ago, now - 200 * DAY)
        for company in sc.companies:
            self._put("Account", company.key, company, to_ms(company.created_at), to_ms(company.updated_at))
        for contact in sc.contacts:
            self._put("Contact", contact.key, contact, to_ms(contact.created_at), to_ms(contact.updated_at))
        for deal in sc.deals:
            self._put("Opportunity", deal.key, deal, to_ms(deal.created_at), to_ms(deal.updated_at))
        for item in sc.line_items:
            deal = self._deals[item.deal_key]
            updated = to_ms(item.updated_at)
            self._put("OpportunityLineItem", item.key, item, min(to_ms(deal.created_at), updated), updated)
        for asset in self._derive_assets(sc):
            self._put("Asset", None, asset, asset.created_ms, asset.modified_ms)
        for act in sc.activities:
            updated = to_ms(act.updated_at)
            created = min(to_ms(act.occurred_at), updated)
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
        now = to_ms(sc.now)
        out: list[_AssetSrc] = []
        for (company_key, product_key), deal in sorted(latest.items(), key=lambda kv: (kv[0], kv[1].key)):
            lines = [i for i in items_by_deal[deal.key] if i.product_key == product_key]
            close = to_ms(deal.close_date)
            period = lines[0].billing_period
            out.append(
                _AssetSrc(
                    company_key=company_key,
                    product_key=product_key,
                    quantity=float(sum(i.quantity for i in lines)),
                    price=lines[0].unit_price,
                    currency=lines[0].currency,
                    purchased_ms=close,
                    usage_end_ms=close + 365 * DAY if period == "P12M" else None,
                    status="Purchased" if now - close < 30 * DAY else "Installed",
                    created_ms=close,
                    modified_ms=max(close, to_ms(deal.updated_at)),
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

        def description(src: SActivity) -> str:
            """Bodies as users log them: several paragraphs, e-mails as HTML, the scenario's own text
            (where a complaint is) never in the first paragraph."""
            if src.kind == "email":
                greeting = "Hello," if src.direction == "inbound" else "Hi team,"
                return f"<p>{greeting}</p><p>{html.escape(src.body)}<br>Thanks</p>"
            if src.kind in ("note", "call"):
                return f"Logged by the account team.\n\n{src.body}"
            return src.body

        def seq(src: SActivity) -> int:
            return int(src.key.rsplit("-", 1)[-1])

        account: dict[str, Getter] = {
            "Name": lambda s: s.name,
            "Website": lambda s: f"https://{s.domain}",
            "Industry": lambda s: INDUSTRIES.get(s.industry, "Other"),
            "Type": lambda s: "Customer - Direct",
            "OwnerId": owner,
            "seats_purchased__c": lambda s: opt(s.seats_purchased),
            "seats_active__c": lambda s: opt(s.seats_active),
            "nps_score__c": lambda s: opt(s.nps_score),
            "onboarding_stage__c": lambda s: s.onboarding_stage,
            "do_not_contact__c": lambda s: s.do_not_contact,
            "CurrencyIsoCode": lambda s: s.currency,
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
            "StageName": lambda s: STAGES.get(s.stage, "Prospecting"),
            # The scenario's amount is already in the deal's own currency (Scenario deals carry
            # ``currency``, ``amount`` in it and ``amount_home``): Amount is kept as it is, in
            # CurrencyIsoCode (Object Reference "Opportunity": "Amount ... in the currency of the
            # opportunity" in a multi-currency org).
            "Amount": lambda s: float(s.amount),
            "CloseDate": lambda s: sf_date(to_ms(s.close_date)),
            "CurrencyIsoCode": lambda s: s.currency,
            "Pricebook2Id": lambda s: self.pricebook_id,
            "HasOpportunityLineItem": lambda s: True,
        }
        line_item: dict[str, Getter] = {
            "OpportunityId": lambda s: ids[s.deal_key],
            "PricebookEntryId": lambda s: ids[pbe_key(s.product_key, s.currency)],
            "Quantity": lambda s: float(s.quantity),
            # In the opportunity's currency already (an opportunity product's currency is its
            # opportunity's: Object Reference "OpportunityLineItem", CurrencyIsoCode).
            "UnitPrice": lambda s: float(s.unit_price),
            "CurrencyIsoCode": lambda s: s.currency,
            "ServiceDate": lambda s: sf_date(to_ms(self._deals[s.deal_key].close_date)),
            "Billing_Period__c": lambda s: PERIODS.get(s.billing_period, s.billing_period),
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
            "Product2Id": lambda s: ids[s.product.key],
            "UnitPrice": lambda s: float(s.unit_price),
            "CurrencyIsoCode": lambda s: s.currency,
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
            "CurrencyIsoCode": lambda s: s.currency,
            "Status": lambda s: s.status,
            "PurchaseDate": lambda s: sf_date(s.purchased_ms),
            "InstallDate": lambda s: sf_date(s.purchased_ms),
            "UsageEndDate": lambda s: None if s.usage_end_ms is None else sf_date(s.usage_end_ms),
        }
        activity: dict[str, Getter] = {
            "WhatId": lambda s: ids[s.company_key],
            "WhoId": lambda s: ids[s.contact_key] if s.contact_key else None,
            "OwnerId": owner,
            "Subject": lambda s: s.subject,
            "Description": description,
            "ActivityDate": lambda s: sf_date(to_ms(s.occurred_at)),
        }
        task: dict[str, Getter] = {
            **activity,
            "Status": task_status,
            "Priority": lambda s: PRIORITIES[seq(s) % 4] if s.kind == "task" else "Normal",
            "TaskSubtype": lambda s: TASK_SUBTYPE[s.kind],
            "Type": lambda s: TASK_TYPE[s.kind],
            "CallType": lambda s: direction(s) if s.kind == "call" else None,
            "CallDisposition": lambda s: (
                DISPOSITIONS.get(s.outcome or "", "Connected") if s.kind == "call" else None
            ),
            "CallDurationInSeconds": lambda s: (
                ((60 + seq(s) % 900) if s.outcome in ("connected", "complaint") else 0)
                if s.kind == "call"
                else None
            ),
            "CompletedDateTime": lambda s: to_ms(s.occurred_at) if task_status(s) == "Completed" else None,
            "Direction__c": direction,
        }
        event: dict[str, Getter] = {
            **activity,
            "StartDateTime": lambda s: to_ms(s.occurred_at),
            "EndDateTime": lambda s: to_ms(s.occurred_at) + 30 * 60_000,
            "ActivityDateTime": lambda s: to_ms(s.occurred_at),
            "DurationInMinutes": lambda s: 30,
            "IsAllDayEvent": lambda s: False,
            "EventSubtype": lambda s: "Event",
            "Type": lambda s: "Meeting",
            "ShowAs": lambda s: "Busy",
            "Outcome__c": lambda s: MEETING_OUTCOMES.get(s.outcome or "", "Completed"),
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
            **{name: {} for name in SETUP_OBJECTS | CURRENCY_OBJECTS},
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
                "Probability": lambda r: PROBABILITY.get(stage(r)),
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
            **{name: {} for name in SETUP_OBJECTS | CURRENCY_OBJECTS},
        }

    def _archive_old_activities(self) -> None:
        """Closed Tasks and Events older than ``ARCHIVE_AFTER_DAYS`` are archived: ``query`` no longer
        returns them, ``queryAll`` does (Salesforce Help, "Archived Activities"; SOQL and SOSL
        Reference, "QueryAll": it "returns records that have been deleted because of a merge or
        delete, and also returns information about archived Task and Event records")."""
        horizon = self.now_ms() - ARCHIVE_AFTER_DAYS * DAY
        for otype in ("Task", "Event"):
            table = self.tables[otype]
            for rec in table.recs.values():
                due = self.value(otype, rec, "ActivityDate")
                closed = otype == "Event" or self.value(otype, rec, "Status") == "Completed"
                if closed and isinstance(due, str) and due < sf_date(horizon):
                    table.archived.add(rec.id)

    def archive(self, otype: str, ids: list[str]) -> list[str]:
        """Archive these activities now (as an org whose archive age is shorter would have)."""
        with self.lock:
            table = self.tables[otype]
            done = [i for i in ids if table.live(i) is not None]
            table.archived.update(done)
            return done

    def _init_custom_field_rows(self) -> None:
        stamp = to_ms(self.scenario.now) - 900 * DAY
        for otype, sobj in self.schema.items():
            for fdef in sobj.fields.values():
                if fdef.custom:
                    self._add_custom_field_row(otype, fdef.name, stamp)
                    # The scenario's own custom fields reach the integration user through its profile.
                    self.access.grant_profile(otype, fdef.name)
        for table in self.tooling_tables.values():
            table.ids.sort()
            table.modified.sort()


@dataclass(frozen=True, slots=True)
class _PriceSrc:
    """A product's list price in one currency (``unit_price`` in ``currency``)."""

    product: SProduct
    currency: str
    unit_price: float


@dataclass(frozen=True, slots=True)
class _AssetSrc:
    company_key: str
    product_key: str
    quantity: float
    #: ``price`` is in ``currency``, the won opportunity's
    price: float
    currency: str
    purchased_ms: int
    usage_end_ms: int | None
    status: str
    created_ms: int
    modified_ms: int
