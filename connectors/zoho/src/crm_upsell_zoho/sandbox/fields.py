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


def create_fields(sb: ZohoSandbox, request: Request, payload: Any) -> Response:
    module = _settings_module(sb, request)
    if not isinstance(payload, dict) or not isinstance(payload.get("fields"), list) or not payload["fields"]:
        raise bad("MANDATORY_NOT_FOUND", "required field not found", api_name="fields", json_path="$.fields")
    org = sb.org
    defs = org.modules[module].fields
    results: list[dict[str, Any]] = []
    for i, item in enumerate(payload["fields"]):
        base = f"$.fields[{i}]"
        try:
            if not isinstance(item, dict):
                raise WriteError("INVALID_DATA", "invalid data", json_path=base)
            label = item.get("field_label")
            if not isinstance(label, str) or not label.strip():
                raise WriteError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    api_name="field_label",
                    json_path=f"{base}.field_label",
                )
            data_type = item.get("data_type")
            if data_type is None:
                raise WriteError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    api_name="data_type",
                    json_path=f"{base}.data_type",
                )
            if data_type not in CREATABLE_TYPES:
                raise WriteError(
                    "INVALID_DATA", "invalid data", api_name="data_type", json_path=f"{base}.data_type"
                )
            api_name = api_name_from_label(label)
            if not api_name:
                raise WriteError(
                    "INVALID_DATA",
                    "invalid data",
                    api_name="field_label",
                    json_path=f"{base}.field_label",
                )
            clash = any(
                fd.label.lower() == label.strip().lower() or fd.api_name.lower() == api_name.lower()
                for fd in defs.values()
            )
            if clash:
                raise WriteError(
                    "DUPLICATE_DATA",
                    "duplicate data",
                    api_name="field_label",
                    json_path=f"{base}.field_label",
                )
            length = item.get("length", CREATABLE_TYPES[data_type])
            limit = 32_000 if data_type == "textarea" else 255
            if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= limit:
                raise WriteError(
                    "INVALID_DATA", "invalid data", api_name="length", json_path=f"{base}.length"
                )
            options: tuple[str, ...] = ()
            if data_type == "picklist":
                raw_opts = item.get("pick_list_values") or []
                if not isinstance(raw_opts, list):
                    raise WriteError(
                        "INVALID_DATA",
                        "invalid data",
                        api_name="pick_list_values",
                        json_path=f"{base}.pick_list_values",
                    )
                options = tuple(
                    str(o.get("actual_value") or o.get("display_value")) if isinstance(o, dict) else str(o)
                    for o in raw_opts
                )
            if sb.runtime.faults.fail_item():
                sb.runtime.stats.fault("partial_batch")
                raise WriteError("INTERNAL_ERROR", "Internal Server Error")
            fd = FieldDef(
                api_name,
                label.strip(),
                data_type,
                org.new_id(),
                custom=True,
                length=length,
                options=options,
                created_ms=sb.now_ms(),
                source="api",
            )
            for _ in options:
                org.new_id()  # picklist value ids follow the field id
            defs[api_name] = fd
            results.append(
                {
                    "code": "SUCCESS",
                    "details": {"id": str(fd.id)},
                    "message": "field created",
                    "status": "success",
                }
            )
        except WriteError as exc:
            results.append(exc.body())
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
