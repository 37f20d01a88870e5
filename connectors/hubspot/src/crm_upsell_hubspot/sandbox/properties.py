"""CRM v3 properties and property groups: list, read, create (one and batch)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.server import iso_ms
from crm_upsell_hubspot.sandbox.common import _bad, _error, _HTTPError, _std_error
from crm_upsell_hubspot.sandbox.state import PortalState

# Which fieldType goes with which type (https://developers.hubspot.com/docs/api/crm/properties).
_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "html", "phonenumber", "file"}),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
}
_PATCHABLE = frozenset(
    {
        "label",
        "description",
        "groupName",
        "type",
        "fieldType",
        "options",
        "displayOrder",
        "hidden",
        "formField",
    }
)


class PropertiesMixin(PortalState):
    """The ``/crm/v3/properties/{objectType}`` routes."""

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

    def update_property(self, otype_raw: str, name: str, body: Any) -> Response:
        """``PATCH /crm/v3/properties/{objectType}/{propertyName}``: a partial update; the fields
        given replace theirs, ``type``/``fieldType``/``options`` included, so a text property can
        become a dropdown (https://developers.hubspot.com/docs/api-reference/crm-properties-v3/core/patch-crm-v3-properties-objectType-propertyName).
        HubSpot's own properties (``readOnlyDefinition``) cannot be changed."""
        otype, _ = self._table(otype_raw)
        prop = self.properties[otype].get(name)
        if prop is None:
            return _error(404, f"Unable to find property {name} on {otype}.", "OBJECT_NOT_FOUND")
        if not isinstance(body, dict):
            raise _bad("Invalid input JSON: a property update must be an object.")
        if prop["modificationMetadata"]["readOnlyDefinition"]:
            raise _bad(
                f"Property {name} is a HubSpot-defined property and its definition cannot be changed.",
                subCategory="PropertyValidationError.READ_ONLY_DEFINITION",
            )
        unknown = sorted(set(body) - _PATCHABLE)
        if unknown:
            raise _bad(f"Invalid input JSON: unknown fields {unknown}.")
        ptype = str(body.get("type", prop["type"]))
        field_type = str(body.get("fieldType", prop["fieldType"]))
        if ptype not in _FIELD_TYPES or field_type not in _FIELD_TYPES[ptype]:
            raise _bad(
                f"fieldType {field_type} is not valid for a property of type {ptype}.",
                subCategory="PropertyValidationError.INVALID_FIELD_TYPE",
            )
        options = body.get("options", prop["options"])
        if not isinstance(options, list) or (ptype == "enumeration" and field_type != "text" and not options):
            raise _bad("Enumeration properties need options.")
        update: dict[str, Any] = {k: body[k] for k in ("label", "description", "groupName") if k in body}
        if "groupName" in update and str(update["groupName"]) not in self.groups[otype]:
            raise _bad(f"Property group '{update['groupName']}' does not exist for {otype}.")
        prop.update(update)
        prop["type"], prop["fieldType"] = ptype, field_type
        prop["options"] = [
            {
                "label": str(o.get("label", o.get("value"))),
                "value": str(o.get("value")),
                "displayOrder": int(o.get("displayOrder", i)),
                "hidden": bool(o.get("hidden", False)),
            }
            for i, o in enumerate(options)
            if isinstance(o, dict) and o.get("value") not in (None, "")
        ]
        if "displayOrder" in body:
            prop["displayOrder"] = int(body["displayOrder"])
        prop["updatedAt"] = iso_ms(self.now_ms())
        return JSONResponse(prop)

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
