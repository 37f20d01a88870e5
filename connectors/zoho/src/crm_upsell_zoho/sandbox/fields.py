"""Field metadata: ``GET /crm/v8/settings/fields`` and ``POST /crm/v8/settings/fields`` (create)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad
from crm_upsell_zoho.sandbox.store import CREATABLE_TYPES, FieldDef, WriteError, api_name_from_label
from crm_upsell_zoho.sandbox.values import field_json

#: Fields one ``POST /settings/fields`` may create. "Create Custom Fields"
#: (https://www.zoho.com/crm/developer/docs/api/v8/create-custom-field.html) does not print the number
#: beside the endpoint; "Update Custom Fields" (same section) states five per call, and Zoho's
#: published request schema for creation caps ``fields`` at five items.
FIELDS_PER_CALL = 5
#: ``field_label`` length, as the published request schema for field creation caps it.
LABEL_MAX = 25
#: A tooltip's text ("Create Custom Fields": ``tooltip.value``), as long as the field editor allows.
TOOLTIP_MAX = 255
#: A picklist value's length ("Field Types: Data Types and Length Limits").
PICKLIST_VALUE_MAX = 120
#: Longest ``length`` per data type ("Field Types: Data Types and Length Limits").
MAX_LENGTHS: dict[str, int] = {
    "text": 255,
    "email": 100,
    "phone": 30,
    "website": 255,
    "integer": 9,
    "bigint": 18,
    "double": 16,
    "currency": 16,
    "decimal": 16,
    "percent": 5,
}
TEXTAREA_LENGTHS: dict[str, int] = {"small": 2_000, "large": 32_000, "rich_text": 50_000}

__all__ = ["create_fields", "list_fields", "routes"]


def _settings_module(sb: ZohoSandbox, request: Request) -> str:
    raw = request.query_params.get("module")
    if not raw:
        raise bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="module")
    if raw not in sb.org.modules:
        raise bad("INVALID_MODULE", "the module name given seems to be invalid", param_name="module")
    return raw


def list_fields(sb: ZohoSandbox, request: Request) -> Response:
    module = _settings_module(sb, request)
    defs = sb.org.modules[module].fields
    return JSONResponse({"fields": [field_json(sb.org, module, fd) for fd in defs.values()]})


def _check(cond: bool, code: str, message: str, **details: Any) -> None:
    if not cond:
        raise WriteError(code, message, **details)


def _length(item: dict[str, Any], data_type: str, base: str) -> int:
    """The field's length as Zoho limits it per data type ("Field Types: Data Types and Length
    Limits", https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html): text 255 characters,
    integer 9 digits, decimal / currency / double 16 digits, percent 5; a textarea's length comes from
    ``textarea.type``: small 2,000, large 32,000, rich_text 50,000."""
    if data_type == "textarea":
        kind = (
            (item.get("textarea") or {}).get("type", "small")
            if isinstance(item.get("textarea"), dict)
            else "small"
        )
        _check(
            kind in TEXTAREA_LENGTHS,
            "INVALID_DATA",
            "invalid data",
            api_name="textarea",
            json_path=f"{base}.textarea.type",
            supported_values=sorted(TEXTAREA_LENGTHS),
        )
        return TEXTAREA_LENGTHS[kind]
    default = CREATABLE_TYPES[data_type]
    length = item.get("length", default)
    limit = MAX_LENGTHS.get(data_type, default)
    _check(
        not isinstance(length, bool) and isinstance(length, int) and 1 <= length <= limit,
        "INVALID_DATA",
        "invalid data",
        api_name="length",
        json_path=f"{base}.length",
        maximum_length=limit,
    )
    return int(length)


def _tooltip(item: dict[str, Any], base: str) -> None:
    """``tooltip`` needs both ``name`` (static_text or info_icon) and ``value`` ("Create Custom
    Fields"); its text is at most 255 characters, as in the field editor."""
    tooltip = item.get("tooltip")
    if tooltip is None:
        return
    path = f"{base}.tooltip"
    _check(isinstance(tooltip, dict), "INVALID_DATA", "invalid data", api_name="tooltip", json_path=path)
    for key in ("name", "value"):
        _check(
            isinstance(tooltip.get(key), str) and bool(tooltip[key]),
            "MANDATORY_NOT_FOUND",
            "required field not found",
            api_name=key,
            json_path=f"{path}.{key}",
        )
    _check(
        tooltip["name"] in ("static_text", "info_icon"),
        "INVALID_DATA",
        "invalid data",
        api_name="name",
        json_path=f"{path}.name",
        supported_values=["static_text", "info_icon"],
    )
    _check(
        len(tooltip["value"]) <= TOOLTIP_MAX,
        "INVALID_DATA",
        "invalid data",
        api_name="value",
        json_path=f"{path}.value",
        maximum_length=TOOLTIP_MAX,
    )


def _picklist(item: dict[str, Any], base: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actual values, display values) of ``pick_list_values``: each entry needs a ``display_value``;
    ``actual_value`` defaults to it; values are unique."""
    raw = item.get("pick_list_values")
    path = f"{base}.pick_list_values"
    _check(
        isinstance(raw, list) and bool(raw),
        "MANDATORY_NOT_FOUND",
        "required field not found",
        api_name="pick_list_values",
        json_path=path,
    )
    actual: list[str] = []
    display: list[str] = []
    for n, entry in enumerate(raw if isinstance(raw, list) else []):
        where = f"{path}[{n}]"
        _check(isinstance(entry, dict), "INVALID_DATA", "invalid data", json_path=where)
        shown = entry.get("display_value")
        _check(
            isinstance(shown, str) and bool(shown.strip()),
            "MANDATORY_NOT_FOUND",
            "required field not found",
            api_name="display_value",
            json_path=f"{where}.display_value",
        )
        value = entry.get("actual_value", shown)
        _check(
            isinstance(value, str), "INVALID_DATA", "invalid data", api_name="actual_value", json_path=where
        )
        for got, seen, key in ((shown, display, "display_value"), (value, actual, "actual_value")):
            _check(
                len(got) <= PICKLIST_VALUE_MAX,
                "INVALID_DATA",
                "invalid data",
                api_name=key,
                json_path=f"{where}.{key}",
                maximum_length=PICKLIST_VALUE_MAX,
            )
            _check(
                got not in seen, "DUPLICATE_DATA", "duplicate data", api_name=key, json_path=f"{where}.{key}"
            )
        actual.append(value)
        display.append(shown)
    return tuple(actual), tuple(display)


def _create_one(sb: ZohoSandbox, module: str, item: Any, base: str) -> FieldDef:
    org = sb.org
    defs = org.modules[module].fields
    _check(isinstance(item, dict), "INVALID_DATA", "invalid data", json_path=base)
    label = item.get("field_label")
    _check(
        isinstance(label, str) and bool(label.strip()),
        "MANDATORY_NOT_FOUND",
        "required field not found",
        api_name="field_label",
        json_path=f"{base}.field_label",
    )
    label = label.strip()
    _check(
        len(label) <= LABEL_MAX,
        "INVALID_DATA",
        "invalid data",
        api_name="field_label",
        json_path=f"{base}.field_label",
        maximum_length=LABEL_MAX,
    )
    data_type = item.get("data_type")
    _check(
        data_type is not None,
        "MANDATORY_NOT_FOUND",
        "required field not found",
        api_name="data_type",
        json_path=f"{base}.data_type",
    )
    _check(
        data_type in CREATABLE_TYPES,
        "INVALID_DATA",
        "invalid data",
        api_name="data_type",
        json_path=f"{base}.data_type",
    )
    api_name = api_name_from_label(label)
    _check(
        bool(api_name),
        "INVALID_DATA",
        "invalid data",
        api_name="field_label",
        json_path=f"{base}.field_label",
    )
    clash = any(
        fd.label.lower() == label.lower() or fd.api_name.lower() == api_name.lower() for fd in defs.values()
    )
    _check(
        not clash, "DUPLICATE_DATA", "duplicate data", api_name="field_label", json_path=f"{base}.field_label"
    )
    _tooltip(item, base)
    length = _length(item, str(data_type), base)
    options: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    if data_type == "picklist":
        options, labels = _picklist(item, base)
    if sb.runtime.faults.fail_item():
        sb.runtime.stats.fault("partial_batch")
        raise WriteError("INTERNAL_ERROR", "Internal Server Error")
    fd = FieldDef(
        api_name,
        label,
        str(data_type),
        org.new_id(),
        custom=True,
        length=length,
        options=options,
        labels=labels,
        created_ms=sb.now_ms(),
        source="api",
    )
    for _ in options:
        org.new_id()  # picklist value ids follow the field id
    defs[api_name] = fd
    return fd


def create_fields(sb: ZohoSandbox, request: Request, payload: Any) -> Response:
    """``POST /settings/fields?module=``: at most :data:`FIELDS_PER_CALL` fields a call ("Create Custom
    Fields"); each is checked on its own, so one bad field does not stop the others (207)."""
    module = _settings_module(sb, request)
    if not isinstance(payload, dict) or not isinstance(payload.get("fields"), list) or not payload["fields"]:
        raise bad("MANDATORY_NOT_FOUND", "required field not found", api_name="fields", json_path="$.fields")
    if len(payload["fields"]) > FIELDS_PER_CALL:
        raise bad(
            "LIMIT_EXCEEDED",
            "the number of fields in the request exceeds the limit",
            api_name="fields",
            json_path="$.fields",
            maximum_length=FIELDS_PER_CALL,
        )
    results: list[dict[str, Any]] = []
    for i, item in enumerate(payload["fields"]):
        try:
            fd = _create_one(sb, module, item, f"$.fields[{i}]")
        except WriteError as exc:
            results.append(exc.body())
            continue
        results.append(
            {
                "code": "SUCCESS",
                "details": {"id": str(fd.id)},
                "message": "field created",
                "status": "success",
            }
        )
    ok = sum(1 for r in results if r["status"] == "success")
    status = 201 if ok == len(results) else 400 if ok == 0 else 207
    return JSONResponse({"fields": results}, status)


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route("/crm/v8/settings/fields", guard.api(lambda r, b: list_fields(sb, r)), methods=["GET"]),
        Route(
            "/crm/v8/settings/fields",
            guard.api(lambda r, b: create_fields(sb, r, b), body=True),
            methods=["POST"],
        ),
    ]
