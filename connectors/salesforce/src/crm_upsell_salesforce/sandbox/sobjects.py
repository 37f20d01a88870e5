"""sObject describe and sObject Collections writes (create and update, 200 records a call)."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    COLLECTION_MAX,
    ID_SHAPE,
    KEY_PREFIXES,
    MODSTAMP_FIELDS,
    NUMERIC,
    SETUP_OBJECTS,
    STRINGY,
    Fail,
    label_of,
    record_error,
    sf_date,
)
from crm_upsell_salesforce.sandbox.schema import (
    FieldDef,
    SObject,
)
from crm_upsell_salesforce.sandbox.soql_parse import (
    id15_to_18,
    parse_datetime_ms,
)
from crm_upsell_salesforce.sandbox.store import (
    Column,
    Rec,
)


class SObjectsApi(OrgBase):
    """Describe and Collections."""

    # -- describe, limits, versions

    def describe(self, request: Request) -> Response:
        otype = self._known(str(request.path_params["sobject"]))
        version = str(request.path_params["version"])
        sobj = self.schema[otype]
        base = f"/services/data/{version}/sobjects/{otype}"
        return JSONResponse(
            {
                **_global_entry(sobj, version),
                # Field-level security: hidden fields are left out, read-only ones are not writable
                # (REST API Developer Guide, "sObject Describe"; Help, "Field-Level Security").
                "fields": [
                    self._described(sobj, f) for f in sobj.fields.values() if self.visible_field(sobj, f.name)
                ],
                "childRelationships": [],
                "recordTypeInfos": [],
                "urls": {
                    "sobject": base,
                    "describe": f"{base}/describe",
                    "rowTemplate": f"{base}/{{ID}}",
                },
            }
        )

    def _described(self, sobj: SObject, fdef: FieldDef) -> dict[str, Any]:
        out = fdef.describe()
        if not self.field_editable(sobj, fdef):
            out["createable"] = out["updateable"] = False
        return out

    def describe_global(self, request: Request) -> Response:
        version = str(request.path_params["version"])
        return JSONResponse(
            {
                "encoding": "UTF-8",
                "maxBatchSize": COLLECTION_MAX,
                "sobjects": [_global_entry(s, version) for s in self.schema.values()],
            }
        )

    # -- writes: sObject Collections

    def _coerce(self, fdef: FieldDef, raw: Any) -> Any:
        """The stored form of a written value; raises ``Fail`` (JSON_PARSER_ERROR) on a type mismatch."""
        if raw is None:
            return None
        ftype = fdef.type

        def bad() -> Fail:
            kind = {"double": "double", "currency": "double", "percent": "double", "int": "int"}.get(
                ftype, ftype
            )
            return Fail(
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
        if ftype in NUMERIC:
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
            return id15_to_18(raw) if ID_SHAPE.fullmatch(raw) else raw
        return raw

    def _check_reference(self, fdef: FieldDef, value: str) -> dict[str, Any] | None:
        if not ID_SHAPE.fullmatch(value):
            return record_error(
                "MALFORMED_ID", f"{label_of(fdef.name)}: id value of incorrect type: {value}", [fdef.name]
            )
        if "Pricebook2" in fdef.reference_to:
            if value != self.pricebook_id:
                return record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            return None
        targets = [t for t in fdef.reference_to if value.startswith(KEY_PREFIXES.get(t, "~"))]
        if not targets:
            return record_error(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{label_of(fdef.name)} ID: id value of incorrect type: {value}",
                [fdef.name],
            )
        if self.tables[targets[0]].live(value) is None:
            return record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
        return None

    def _validate_values(
        self, sobj: SObject, values: dict[str, Any], *, create: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        clean: dict[str, Any] = {}
        for raw_name, raw in values.items():
            fdef = self.visible_field(sobj, raw_name)
            if fdef is None:
                return {}, record_error(
                    "INVALID_FIELD", f"No such column '{raw_name}' on sobject of type {sobj.name}", [raw_name]
                )
            if fdef.name == "Id":
                message = "cannot specify Id in an insert call" if create else "Id is read-only"
                return {}, record_error("INVALID_FIELD", message, ["Id"])
            if not (fdef.createable if create else fdef.updateable) or not self.field_editable(sobj, fdef):
                return {}, record_error(
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
                    return {}, record_error(
                        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]
                    )
                continue
            if fdef.type in STRINGY and fdef.length and len(str(value)) > fdef.length:
                return {}, record_error(
                    "STRING_TOO_LONG",
                    f"{label_of(name)}: data value too large: {str(value)[:40]} (max length={fdef.length})",
                    [name],
                )
            if (
                fdef.type in ("double", "currency", "percent")
                and fdef.precision
                and abs(float(value)) >= 10 ** (fdef.precision - fdef.scale)
            ):
                return {}, record_error(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{label_of(name)}: value outside of valid range on numeric field: {value}",
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
                return {}, record_error(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
            if sobj.name == "OpportunityLineItem":
                return clean, self._line_item_currency_problem(clean)
        return clean, None

    def _opportunity_currency(self, values: dict[str, Any]) -> str | None:
        """The currency of the opportunity a new opportunity product belongs to (None in a
        single-currency org or when the opportunity is unknown)."""
        if self.schema["OpportunityLineItem"].field("CurrencyIsoCode") is None:
            return None
        opp = self.tables["Opportunity"].live(str(values.get("OpportunityId") or ""))
        return None if opp is None else self.value("Opportunity", opp, "CurrencyIsoCode")

    def _line_item_currency_problem(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """In a multi-currency org an opportunity product's price book entry must be in its
        opportunity's currency: each PricebookEntry has one CurrencyIsoCode and prices are never
        converted at the line (Object Reference "PricebookEntry" and "OpportunityLineItem"). The
        documentation names no error body; this one is what orgs answer, as integrators report it
        (FIELD_INTEGRITY_EXCEPTION on PricebookEntryId)."""
        wanted = self._opportunity_currency(values)
        entry = self.tables["PricebookEntry"].live(str(values.get("PricebookEntryId") or ""))
        if wanted is None or entry is None:
            return None
        if self.value("PricebookEntry", entry, "CurrencyIsoCode") == wanted:
            return None
        return record_error(
            "FIELD_INTEGRITY_EXCEPTION",
            "field integrity exception: PricebookEntryId (pricebook entry currency code does not match "
            "opportunity currency code)",
            ["PricebookEntryId"],
        )

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
                ActivityDate=sf_date(start),
            )
        elif otype == "Product2":
            out["IsActive"] = False
        elif otype == "Opportunity":
            out.update(Pricebook2Id=self.pricebook_id)
            if self.schema["Opportunity"].field("CurrencyIsoCode") is not None:
                out["CurrencyIsoCode"] = self.scenario.home_currency
        elif otype == "OpportunityLineItem":
            # An opportunity product is in its opportunity's currency (read-only on the line).
            currency = self._opportunity_currency(values)
            if currency is not None:
                out["CurrencyIsoCode"] = currency
        if otype == "Task" and values.get("Status") == "Completed":
            out["CompletedDateTime"] = now
        return out

    def collections(self, request: Request, body: Any, *, create: bool) -> Response:
        path_type = request.path_params.get("sobject")
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise Fail(400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' array")
        records: list[Any] = body["records"]
        if len(records) > COLLECTION_MAX:
            raise Fail(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_MAX} records into this call",
            )
        all_or_none = body.get("allOrNone", False)
        if isinstance(all_or_none, str):
            all_or_none = all_or_none.lower() == "true"
        now = self.now_ms()
        planned: list[tuple[str, Rec | None, dict[str, Any]] | dict[str, Any]] = []
        for index, item in enumerate(records):
            if not isinstance(item, dict):
                raise Fail(400, "JSON_PARSER_ERROR", f"Record {index} is not a JSON object")
            attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
            raw_type = str((attributes or {}).get("type") or path_type or "")
            if not raw_type:
                raise Fail(400, "INVALID_TYPE", f"No SObject Type defined in the record at index {index}")
            otype = next((n for n in self.schema if n.lower() == raw_type.lower()), None)
            if otype is None:
                raise Fail(400, "INVALID_TYPE", f"sObject type '{raw_type}' is not supported.")
            sobj = self.schema[otype]
            values = {k: v for k, v in item.items() if k != "attributes" and (create or k.lower() != "id")}
            rec: Rec | None = None
            if not create:
                raw_id = item.get("id", item.get("Id"))
                if not raw_id:
                    planned.append(record_error("MISSING_ARGUMENT", "Id not specified in an update call", []))
                    continue
                raw_id = str(raw_id)
                if not ID_SHAPE.fullmatch(raw_id) or not raw_id.startswith(sobj.prefix):
                    planned.append(
                        record_error(
                            "MALFORMED_ID", f"{otype} ID: id value of incorrect type: {raw_id}", ["Id"]
                        )
                    )
                    continue
                rec = self.tables[otype].recs.get(id15_to_18(raw_id))
                if rec is None:
                    planned.append(
                        record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                    )
                    continue
                if rec.deleted_ms is not None:
                    planned.append(record_error("ENTITY_IS_DELETED", "entity is deleted", []))
                    continue
            clean, problem = self._validate_values(sobj, values, create=create)
            if problem is not None:
                planned.append(problem)
                continue
            pending = [p[2] for p in planned if not isinstance(p, dict) and p[0] == otype]
            problem = self.setup_rule(otype, clean, rec, pending)
            if problem is not None:
                planned.append(problem)
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                target = rec.id if rec is not None else "a new record"
                planned.append(
                    record_error(
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
                        record_error(
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
            if otype in SETUP_OBJECTS:
                self.access.invalidate()
            results.append({"id": rec.id, "success": True, "errors": []})
        return JSONResponse(results)

    # -- Tooling API: CustomField
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
                if fdef is None or fdef.name in ("Id", *MODSTAMP_FIELDS, "IsDeleted"):
                    raise KeyError(f"{table.name} has no settable field {name!r}")
                try:
                    clean[fdef.name] = self._coerce(fdef, raw)
                except Fail as exc:
                    raise ValueError(f"{table.name}.{fdef.name}: {exc}") from None
            rec.over = {**(rec.over or {}), **clean}
            table.touch(rec, self.now_ms())
            columns = [Column(sobj.fields[n.lower()].name, sobj.fields[n.lower()].type) for n in clean]
            return self.record_json(table.name, rec, [Column("Id", "id"), *columns], "v62.0")


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
