"""The portal's state, loaded from a scenario, and the helpers every API area uses."""

from __future__ import annotations

import gc
import html
import threading
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.scenario import SActivity, Scenario, SCompany, SContact, SLineItem, SProduct
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxRuntime, iso_ms
from crm_upsell_hubspot.sandbox.catalog import (
    _ALIASES,
    _BATCH_MAX,
    _ID_BASE,
    _KIND_TO_TYPE,
    _MEETING_OUTCOMES,
    _PRIORITIES,
    _SINGULAR,
    ASSOCIATION_TYPES,
    CALL_DISPOSITIONS,
    OBJECT_TYPES,
)
from crm_upsell_hubspot.sandbox.common import _bad, _iso, _ms, _num
from crm_upsell_hubspot.sandbox.engagement import engagement_getters
from crm_upsell_hubspot.sandbox.property_defs import _CUSTOM, _standard_properties
from crm_upsell_hubspot.sandbox.store import Getter, Rec, Table


class PortalState:
    """The state of one emulated HubSpot portal: records, associations, properties and owners."""

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
        for otype, props in _standard_properties(self.scenario.currencies()).items():
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
            **engagement_getters(self.scenario),
        }
        deals: dict[str, Getter] = {
            "dealname": lambda s: s.name,
            "dealstage": lambda s: s.stage,
            "pipeline": lambda s: "default",
            "amount": lambda s: _num(s.amount),
            "amount_in_home_currency": lambda s: _num(s.amount_home),
            "closedate": lambda s: _iso(s.close_date),
            "deal_currency_code": lambda s: s.currency,
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
            "hs_line_item_currency_code": lambda s: s.currency,
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
            "hs_call_body": lambda s: s.body_html,
            "hs_call_direction": lambda s: (s.direction or "outbound").upper(),
            "hs_call_disposition": lambda s: CALL_DISPOSITIONS.get(
                s.outcome or "", CALL_DISPOSITIONS["connected"]
            ),
            "hs_call_status": lambda s: "COMPLETED",
        }
        meetings: dict[str, Getter] = {
            **common,
            "hs_meeting_title": lambda s: s.subject,
            "hs_meeting_body": lambda s: s.body_html,
            "hs_meeting_outcome": lambda s: _MEETING_OUTCOMES.get(s.outcome or "", "COMPLETED"),
            "hs_meeting_start_time": when,
            "hs_meeting_end_time": lambda s: _iso(s.occurred_at + timedelta(minutes=30)),
        }
        emails: dict[str, Getter] = {
            **common,
            "hs_email_subject": lambda s: s.subject,
            "hs_email_text": lambda s: s.body,
            "hs_email_html": lambda s: s.body_html,
            "hs_email_direction": lambda s: "INCOMING_EMAIL" if s.direction == "inbound" else "EMAIL",
            "hs_email_status": lambda s: "SENT",
        }
        notes: dict[str, Getter] = {
            **common,
            "hs_note_body": lambda s: f"<p><strong>{html.escape(s.subject)}</strong></p>{s.body_html}",
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

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def hubspot_id(self, key: str) -> str:
        """The HubSpot id of a scenario record (company, contact, deal... key) or owner key."""
        if key in self.owner_ids:
            return str(self.owner_ids[key])
        return str(self.ids[key])

    def planted(self) -> dict[str, str]:
        return {str(self.ids[key]): persona for key, persona in self.scenario.planted.items()}

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
