"""Writes: ``POST`` (insert), ``PUT`` (update), ``POST /upsert`` and ``DELETE`` on ``/crm/v8/{module}``.

As "Insert Records" / "Update Records" document them
(https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html,
https://www.zoho.com/crm/developer/docs/api/v8/update-records.html): at most 100 records a call; one
``{code, details, message, status}`` per record, 201 (insert) / 200 when all succeed, 207 when mixed, 400
when all fail. ``trigger`` is an array of ``workflow``, ``approval``, ``blueprint``, ``pathfinder`` and
``orchestration``; when it is absent Zoho runs every automation, so the sandbox counts those writes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard, HTTPError
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad
from crm_upsell_zoho.sandbox.store import MODULES, SYSTEM_FIELDS, Rec, WriteError
from crm_upsell_zoho.sandbox.values import coerce

__all__ = ["delete_records", "insert", "routes", "update", "upsert"]

BATCH_MAX = 100
TRIGGERS = frozenset({"approval", "workflow", "blueprint", "pathfinder", "orchestration"})
#: What runs when a write names no ``trigger`` ("Insert Records").
DEFAULT_TRIGGERS = ("workflow", "approval", "blueprint")


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _batch(sb: ZohoSandbox, payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or "data" not in payload:
        raise bad("MANDATORY_NOT_FOUND", "required field not found", api_name="data", json_path="$.data")
    data = payload["data"]
    if not isinstance(data, list) or not data:
        raise bad("INVALID_DATA", "invalid data", api_name="data", json_path="$.data")
    if len(data) > BATCH_MAX:
        raise HTTPError(
            JSONResponse(
                {
                    "data": [
                        {
                            "code": "LIMIT_EXCEEDED",
                            "details": {"maximum_length": BATCH_MAX, "api_name": "data"},
                            "message": "count of records in your request exceeds the limit",
                            "status": "error",
                        }
                    ]
                },
                400,
            )
        )
    trigger = payload.get("trigger")
    if trigger is not None and (not isinstance(trigger, list) or any(t not in TRIGGERS for t in trigger)):
        raise bad("INVALID_DATA", "invalid data", api_name="trigger", json_path="$.trigger")
    # Without ``trigger`` Zoho runs workflow, approval and blueprint ("Insert Records"): count such
    # writes, and the automations each write asked for, so a test can assert that none fired.
    if trigger is None:
        sb.writes_without_trigger += 1
        sb.triggers_fired.update(DEFAULT_TRIGGERS)
    else:
        sb.triggers_fired.update(trigger)
    return data


def _values(sb: ZohoSandbox, module: str, item: Any, index: int, rec: Rec | None) -> dict[str, Any]:
    """Validated stored values of one input record; raises :class:`WriteError`."""
    base = f"$.data[{index}]"
    if not isinstance(item, dict):
        raise WriteError("INVALID_DATA", "invalid data", json_path=base)
    org = sb.org
    defs = org.modules[module].fields
    se_module = item.get("$se_module")
    if se_module is not None and (not isinstance(se_module, str) or se_module not in MODULES):
        raise WriteError(
            "INVALID_DATA", "invalid data", api_name="$se_module", json_path=f"{base}.$se_module"
        )
    if se_module is None and rec is not None:
        se_module = org.stored(module, rec, "$se_module")
    values: dict[str, Any] = {}
    for key, raw in item.items():
        if key == "id" or key.startswith("$") or key in SYSTEM_FIELDS or key in ("Layout", "Tag"):
            continue
        fd = defs.get(key)
        path = f"{base}.{key}"
        if fd is None:
            raise WriteError(
                "INVALID_DATA",
                "the field api name given seems to be invalid",
                api_name=key,
                json_path=path,
            )
        if fd.read_only:
            raise WriteError("INVALID_DATA", "the field is read only", api_name=key, json_path=path)
        values[key] = coerce(org, module, fd, raw, path, se_module)
    if item.get("$se_module") is not None:
        values["$se_module"] = se_module
    return values


def _success(sb: ZohoSandbox, module: str, rec: Rec, message: str, **extra: Any) -> dict[str, Any]:
    org = sb.org
    out: dict[str, Any] = {"code": "SUCCESS"}
    out.update(extra)
    out["details"] = {
        "Modified_Time": org.zt(rec.updated_ms),
        "Modified_By": org.user_json(org.stored(module, rec, "Modified_By"), email=False),
        "Created_Time": org.zt(rec.created_ms),
        "id": str(rec.id),
        "Created_By": org.user_json(org.stored(module, rec, "Created_By"), email=False),
        "$approval_state": "approved",
    }
    out["message"] = message
    out["status"] = "success"
    return out


def _insert(sb: ZohoSandbox, module: str, values: dict[str, Any], index: int) -> Rec:
    org = sb.org
    mod = org.modules[module]
    for fd in mod.fields.values():
        if fd.mandatory and values.get(fd.api_name) is None:
            raise WriteError(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name=fd.api_name,
                json_path=f"$.data[{index}].{fd.api_name}",
            )
    for lookup in ("What_Id", "Parent_Id"):
        if values.get(lookup) is not None and "$se_module" not in values:
            raise WriteError(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="$se_module",
                json_path=f"$.data[{index}].$se_module",
            )
    if sb.runtime.faults.fail_item():
        sb.runtime.stats.fault("partial_batch")
        raise WriteError("INTERNAL_ERROR", "Internal Server Error")
    now = sb.now_ms()
    rec = Rec(org.new_id(), None, now, now)
    admin = org.admin.id
    defaults: dict[str, Any] = {"Owner": admin}
    if module == "Tasks":
        defaults.update({"Status": "Not Started", "Priority": "High"})
    if module == "Products":
        defaults["Product_Active"] = True
    rec.vals = {**defaults, **values, "Created_By": admin, "Modified_By": admin}
    org.tables[module].add(rec)
    return rec


def _update(sb: ZohoSandbox, module: str, rec: Rec, values: dict[str, Any]) -> None:
    if sb.runtime.faults.fail_item():
        sb.runtime.stats.fault("partial_batch")
        raise WriteError("INTERNAL_ERROR", "Internal Server Error")
    if rec.vals is None:
        rec.vals = {}
    rec.vals.update(values)
    rec.vals["Modified_By"] = sb.org.admin.id
    sb.org.tables[module].touch(rec, sb.now_ms())


def _respond(results: list[dict[str, Any]], ok_status: int) -> Response:
    ok = sum(1 for r in results if r["status"] == "success")
    status = ok_status if ok == len(results) else 400 if ok == 0 else 207
    return JSONResponse({"data": results}, status)


def _target(sb: ZohoSandbox, module: str, item: Any, index: int) -> Rec:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        raise WriteError(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            api_name="id",
            json_path=f"$.data[{index}].id",
        )
    raw = str(item["id"])
    rec = sb.org.find(module, int(raw)) if raw.isdigit() else None
    if rec is None:
        raise WriteError(
            "INVALID_DATA",
            "the id given seems to be invalid",
            api_name="id",
            json_path=f"$.data[{index}].id",
        )
    return rec


def insert(sb: ZohoSandbox, module_raw: str, payload: Any) -> Response:
    module = sb.module_table(module_raw).module
    results: list[dict[str, Any]] = []
    for i, item in enumerate(_batch(sb, payload)):
        try:
            rec = _insert(sb, module, _values(sb, module, item, i, None), i)
            results.append(_success(sb, module, rec, "record added"))
        except WriteError as exc:
            results.append(exc.body())
    return _respond(results, 201)


def update(sb: ZohoSandbox, module_raw: str, payload: Any) -> Response:
    module = sb.module_table(module_raw).module
    results: list[dict[str, Any]] = []
    for i, item in enumerate(_batch(sb, payload)):
        try:
            rec = _target(sb, module, item, i)
            _update(sb, module, rec, _values(sb, module, item, i, rec))
            results.append(_success(sb, module, rec, "record updated"))
        except WriteError as exc:
            results.append(exc.body())
    return _respond(results, 200)


def upsert(sb: ZohoSandbox, module_raw: str, payload: Any) -> Response:
    table = sb.module_table(module_raw)
    module, org = table.module, sb.org
    data = _batch(sb, payload)
    defs = org.modules[module].fields
    checks_raw = payload.get("duplicate_check_fields")
    if checks_raw is None:
        dup = org.modules[module].duplicate_field
        checks = [dup] if dup else []
    else:
        if not isinstance(checks_raw, list) or any(
            not isinstance(c, str) or c not in defs for c in checks_raw
        ):
            raise bad(
                "INVALID_DATA",
                "invalid data",
                api_name="duplicate_check_fields",
                json_path="$.duplicate_check_fields",
            )
        checks = list(checks_raw)
    indexes: dict[str, dict[Any, int]] = {}

    def index_for(name: str) -> dict[Any, int]:
        if name not in indexes:
            idx: dict[Any, int] = {}
            for rid in table.by_id:
                value = org.stored(module, table.recs[rid], name)
                if value is not None:
                    idx.setdefault(_norm(value), rid)
            indexes[name] = idx
        return indexes[name]

    results: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        try:
            match: Rec | None = None
            matched_on: str | None = None
            if isinstance(item, dict) and item.get("id") not in (None, ""):
                match = _target(sb, module, item, i)
            elif isinstance(item, dict):
                for name in checks:
                    if item.get(name) is None:
                        continue
                    rid = index_for(name).get(_norm(item[name]))
                    if rid is not None and rid in table.recs:
                        match, matched_on = table.recs[rid], name
                        break
            values = _values(sb, module, item, i, match)
            if match is not None:
                _update(sb, module, match, values)
                results.append(
                    _success(sb, module, match, "record updated", duplicate_field=matched_on, action="update")
                )
            else:
                rec = _insert(sb, module, values, i)
                for name in checks:
                    if name in indexes and values.get(name) is not None:
                        indexes[name].setdefault(_norm(values[name]), rec.id)
                results.append(
                    _success(sb, module, rec, "record added", duplicate_field=None, action="insert")
                )
        except WriteError as exc:
            results.append(exc.body())
    return _respond(results, 200)


def delete_records(sb: ZohoSandbox, request: Request, module_raw: str) -> Response:
    module = sb.module_table(module_raw).module
    raw = request.query_params.get("ids")
    if not raw:
        raise bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="ids")
    ids = [p.strip() for p in raw.split(",") if p.strip()]
    if len(ids) > BATCH_MAX:
        raise bad("LIMIT_EXCEEDED", "limit exceeded", limit=BATCH_MAX, param_name="ids")
    results: list[dict[str, Any]] = []
    for raw_id in ids:
        done = sb.delete(module, [raw_id])
        if done:
            results.append(
                {
                    "code": "SUCCESS",
                    "details": {"id": raw_id},
                    "message": "record deleted",
                    "status": "success",
                }
            )
        else:
            results.append(
                {
                    "code": "INVALID_DATA",
                    "details": {"id": raw_id},
                    "message": "record not deleted",
                    "status": "error",
                }
            )
    return _respond(results, 200)


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    def module(request: Request) -> str:
        return str(request.path_params["module"])

    return [
        Route(
            "/crm/v8/{module}/upsert",
            guard.api(lambda r, b: upsert(sb, module(r), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v8/{module}", guard.api(lambda r, b: insert(sb, module(r), b), body=True), methods=["POST"]
        ),
        Route(
            "/crm/v8/{module}", guard.api(lambda r, b: update(sb, module(r), b), body=True), methods=["PUT"]
        ),
        Route(
            "/crm/v8/{module}", guard.api(lambda r, b: delete_records(sb, r, module(r))), methods=["DELETE"]
        ),
    ]
