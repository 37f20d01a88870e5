"""Reading and writing one record: property values, the public JSON shape, validated writes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from crm_upsell_connector.sandbox.server import iso_ms
from crm_upsell_hubspot.sandbox.catalog import (
    _CREATED_PROP,
    _DEFAULT_PROPS,
    _MODIFIED_PROPS,
    _SINGULAR,
    ASSOCIATION_TYPES,
)
from crm_upsell_hubspot.sandbox.common import _bad, _normalize_type, _num, _parse_time
from crm_upsell_hubspot.sandbox.state import PortalState
from crm_upsell_hubspot.sandbox.store import Rec


class RecordsMixin(PortalState):
    """Property values, public shapes and validated writes of single records."""

    def value(self, otype: str, rec: Rec, prop: str) -> str | None:
        """One property value as HubSpot would return it."""
        if rec.props is not None and prop in rec.props:
            return rec.props[prop]
        if otype == "deals" and prop == "amount_in_home_currency" and rec.props:
            return self._home_amount(rec)
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

    def _home_amount(self, rec: Rec) -> str | None:
        """A deal's ``amount_in_home_currency`` once its amount or currency was written: the amount
        divided by the currency's rate to the company currency (HubSpot calculates it; the rates are
        the account's, https://developers.hubspot.com/docs/api/settings/currencies)."""
        raw_amount = self.value("deals", rec, "amount")
        currency = self.value("deals", rec, "deal_currency_code") or self.scenario.home_currency
        rate = self.scenario.exchange_rates.get(currency)
        if raw_amount in (None, "") or not rate:
            return None
        return _num(round(float(raw_amount) / rate, 2))

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
