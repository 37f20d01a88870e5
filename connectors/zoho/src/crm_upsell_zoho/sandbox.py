"""A Zoho CRM API emulator (v8 records, deleted records, users, fields, COQL, OAuth) over a scenario.

One app serves both the accounts server (``POST /oauth/v2/token``) and the API domain (``/crm/v8/...``);
the token response's ``api_domain`` is the sandbox's own base URL. Shapes follow Zoho's OpenAPI
descriptions (``zoho/crm-oas``, v8.0): 19-digit string ids, lookups as ``{"name", "id"}``, datetimes with
seconds and a UTC offset, ``{data, info}`` pages, 204 when nothing matches, per-record
``{code, details, message, status}`` write results with 201/200, 207 when mixed and 400 when all fail.

What an account owns: Zoho Deals carry no line items, so won (and open) Deals hold a custom subform
``Deal_Products`` whose rows are ``{id, Product_Name: {name, id}, Quantity, List_Price,
Billing_Frequency: "Annually"|"Monthly", Parent_Id}``; a Deal is "owned" when ``Stage`` is ``Closed Won``.
Scenario e-mails are not served: Zoho keeps e-mails outside the record modules.

Paging: ``page``/``per_page`` reach the first 2,000 records (``discrete_limit``); past that, 400
``DISCRETE_PAGINATION_LIMIT_EXCEEDED`` and the caller must follow ``next_page_token`` (keyset tokens
bound to module, sort and If-Modified-Since, valid 24 h, up to 100,000 records). ``If-Modified-Since``
is inclusive at second precision. The default sort is ``id`` ``desc``, as in Zoho's examples.

API credits (a per-lifetime budget of ``options.daily_limit``; Zoho's window is a rolling 24 h):

==========================================  =======
call                                        credits
==========================================  =======
GET records / deleted / users / fields      1
POST/PUT/DELETE records, upsert (<=100)     1
POST settings/fields                        1
COQL, LIMIT <= 200 / <= 1000 / <= 2000      1 / 2 / 3
POST /oauth/v2/token                        0
==========================================  =======

Exhausted credits answer 429 ``LIMIT_EXCEEDED``; more than ``concurrency_limit`` requests in flight, the
rolling window (``rate_limit_max`` per ``rate_limit_interval_ms``) and injected storms answer 429
``TOO_MANY_REQUESTS``. Zoho's v8 docs describe no rate-limit headers, so none are sent.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.sandbox.server import (
    DroppedResponse,
    LatencyMiddleware,
    SandboxOptions,
    SandboxRuntime,
    control_routes,
)
from crm_upsell_zoho.sandbox_coql import COQLSyntaxError, parse_coql
from crm_upsell_zoho.sandbox_query import QueryError, run_coql
from crm_upsell_zoho.sandbox_store import (
    CREATABLE_TYPES,
    MODULES,
    SYSTEM_FIELDS,
    FieldDef,
    Org,
    Rec,
    Table,
    WriteError,
    api_name_from_label,
    parse_zoho_time,
)

__all__ = [
    "MODULES",
    "ZohoSandbox",
    "create_app",
    "delete",
    "sandbox_state",
    "set_fields",
    "touch",
    "zoho_id",
]

_BATCH_MAX = 100
_PER_PAGE_MAX = 200
_FIELDS_MAX = 50
_TOKEN_TTL_MS = 86_400_000
_SORT_BY = ("id", "Created_Time", "Modified_Time")
_USER_TYPES = frozenset(
    {
        "AllUsers",
        "ActiveUsers",
        "AdminUsers",
        "CurrentUser",
        "ActiveConfirmedUsers",
        "ActiveConfirmedAdmins",
        "AllActiveUsers",
        "ConfirmedUsers",
    }
)
_TRIGGERS = frozenset({"approval", "workflow", "blueprint", "pathfinder", "orchestration"})


def _err(code: str, message: str, status: int = 400, **details: Any) -> JSONResponse:
    return JSONResponse({"code": code, "details": details, "message": message, "status": "error"}, status)


class _HTTPError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _bad(code: str, message: str, status: int = 400, **details: Any) -> _HTTPError:
    return _HTTPError(_err(code, message, status, **details))


@dataclass(slots=True)
class _PageToken:
    module: str
    sort_by: str
    desc: bool
    since_ms: int | None
    pos: Any
    served: int
    expires_ms: int


def _rec_id(element: Any) -> int:
    return element if isinstance(element, int) else int(element[1])


def _slice(seq: Sequence[Any], lo: int, pos: Any, desc: bool, n: int, offset: int) -> tuple[list[Any], bool]:
    """A page of ``seq[lo:]`` (ascending) after ``pos`` (or at ``offset``), in the requested direction."""
    import bisect

    if not desc:
        start = bisect.bisect_right(seq, pos, lo) if pos is not None else lo + offset
        items = list(seq[start : start + n])
        return items, start + n < len(seq)
    end = bisect.bisect_left(seq, pos, lo) if pos is not None else len(seq) - offset
    if end <= lo:
        return [], False
    start = max(lo, end - n)
    return list(seq[start:end])[::-1], start > lo


class ZohoSandbox:
    """The state of one emulated Zoho CRM org and the logic behind every route."""

    def __init__(
        self,
        scenario: Scenario,
        options: SandboxOptions,
        *,
        discrete_limit: int = 2_000,
        token_limit: int = 100_000,
        concurrency_limit: int = 10,
        utc_offset_min: int = 0,
    ) -> None:
        import gc

        self.scenario = scenario
        self.options = options
        self.runtime = SandboxRuntime(options, not_before=scenario.now)
        self.lock = threading.RLock()
        self.discrete_limit = discrete_limit
        self.token_limit = token_limit
        self.concurrency_limit = concurrency_limit
        self.in_flight = 0
        self.tokens: dict[str, int] = {}  # issued access token -> expiry (sandbox ms)
        self.page_tokens: dict[str, _PageToken] = {}
        self._filtered: dict[tuple[str, str, int, int], list[Any]] = {}
        self.token_ttl_s = (
            options.access_token_ttl_s if "access_token_ttl_s" in options.model_fields_set else 3600
        )
        gc_was_enabled = gc.isenabled()
        gc.disable()  # hundreds of thousands of small objects
        try:
            self.org = Org(scenario, utc_offset_min)
        finally:
            if gc_was_enabled:
                gc.enable()

    # -- helpers

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def _module(self, raw: str) -> Table:
        table = self.org.tables.get(raw)
        if table is None:
            raise _bad("INVALID_MODULE", "the module name given seems to be invalid", resource_path_index=0)
        return table

    # -- auth

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "zoho-oauthtoken" or not token.strip():
            return _err("AUTHENTICATION_FAILURE", "Authentication failed", 401)
        token = token.strip()
        if secrets.compare_digest(token, self.options.token):
            return None
        expiry = self.tokens.get(token)
        if expiry is None or self.now_ms() >= expiry:
            return _err("INVALID_TOKEN", "invalid oauth token", 401)
        return None

    def issue_token(self, params: dict[str, str], api_domain: str) -> Response:
        # Zoho's accounts server answers bad credentials with HTTP 200 and an ``error`` field.
        if params.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"})
        if params.get("client_id") != self.options.client_id:
            return JSONResponse({"error": "invalid_client"})
        if params.get("client_secret") != self.options.client_secret:
            return JSONResponse({"error": "invalid_client"})
        if params.get("refresh_token") != self.options.refresh_token:
            return JSONResponse({"error": "invalid_code"})
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self.lock:
            self.tokens[token] = self.now_ms() + self.token_ttl_s * 1000
        return JSONResponse(
            {
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.fields.ALL ZohoCRM.users.READ ZohoCRM.coql.READ",
                "api_domain": api_domain,
                "token_type": "Bearer",
                "expires_in": self.token_ttl_s,
            }
        )

    def expire_tokens(self) -> int:
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)

    # -- GET /crm/v8/{module}

    def _fields_param(self, module: str, raw: str | None) -> list[str]:
        if raw is None or not raw.strip():
            raise _bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="fields")
        names = list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        if len(names) > _FIELDS_MAX:
            raise _bad("LIMIT_EXCEEDED", "limit exceeded", limit=_FIELDS_MAX, param_name="fields")
        defs = self.org.modules[module].fields
        for name in names:
            if name not in defs and name not in ("id", "$se_module"):
                raise _bad("INVALID_DATA", "invalid data", param_name="fields", api_name=name)
        return names

    @staticmethod
    def _int_param(raw: str | None, name: str, default: int, low: int = 1, high: int | None = None) -> int:
        if raw in (None, ""):
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise _bad("INVALID_DATA", "invalid data", param_name=name) from None
        if value < low or (high is not None and value > high):
            raise _bad("INVALID_DATA", "invalid data", param_name=name)
        return value

    def _since(self, request: Request) -> int | None:
        raw = request.headers.get("if-modified-since")
        if raw is None:
            return None
        ms = parse_zoho_time(raw)
        if ms is None or "T" not in raw:
            raise _bad(
                "PATTERN_NOT_MATCHED",
                "Please check whether the input values are correct",
                param_name="If-Modified-Since",
            )
        return ms // 1000 * 1000  # Zoho compares at second precision

    def _ordered(self, table: Table, sort_by: str, since_ms: int | None) -> tuple[Sequence[Any], int]:
        """The ascending sequence to page over and the index of its first element."""
        import bisect

        if sort_by == "Modified_Time":
            lo = 0 if since_ms is None else bisect.bisect_left(table.by_mod, (since_ms, -1))
            return table.by_mod, lo
        if since_ms is None:
            return (table.by_id, 0) if sort_by == "id" else (table.by_created, 0)
        key = (table.module, sort_by, since_ms, table.version)
        cached = self._filtered.get(key)
        if cached is None:
            start = bisect.bisect_left(table.by_mod, (since_ms, -1))
            ids = [rid for _, rid in table.by_mod[start:]]
            cached = sorted(ids) if sort_by == "id" else sorted((table.recs[i].created_ms, i) for i in ids)
            if len(self._filtered) > 8:
                self._filtered.clear()
            self._filtered[key] = cached
        return cached, 0

    def list_records(self, request: Request, module_raw: str) -> Response:
        table = self._module(module_raw)
        module = table.module
        q = request.query_params
        fields = self._fields_param(module, q.get("fields"))
        per_page = self._int_param(q.get("per_page"), "per_page", _PER_PAGE_MAX, 1, _PER_PAGE_MAX)
        sort_by = q.get("sort_by") or "id"
        if sort_by not in _SORT_BY:
            raise _bad("INVALID_DATA", "invalid data", param_name="sort_by", supported_values=list(_SORT_BY))
        sort_order = q.get("sort_order") or "desc"
        if sort_order not in ("asc", "desc"):
            raise _bad(
                "INVALID_DATA", "invalid data", param_name="sort_order", supported_values=["asc", "desc"]
            )
        desc = sort_order == "desc"
        since = self._since(request)
        token_raw = q.get("page_token")
        now = self.now_ms()
        if token_raw:
            if q.get("page"):
                raise _bad(
                    "AMBIGUITY_DURING_PROCESSING",
                    "ambiguity while processing the request",
                    ambiguity_due_to=[{"param_name": "page"}, {"param_name": "page_token"}],
                )
            state = self.page_tokens.get(token_raw)
            if state is None:
                raise _bad("INVALID_DATA", "invalid data", param_name="page_token")
            if now >= state.expires_ms:
                raise _bad(
                    "EXPIRED_VALUE",
                    "the page token has expired",
                    api_name="page_token",
                    json_path="page_token",
                )
            if request.headers.get("if-modified-since") is None:
                since = state.since_ms
            for name, mine, theirs in (
                ("module", module, state.module),
                ("sort_by", sort_by if q.get("sort_by") else state.sort_by, state.sort_by),
                ("sort_order", desc if q.get("sort_order") else state.desc, state.desc),
                ("If-Modified-Since", since, state.since_ms),
            ):
                if mine != theirs:
                    raise _bad(
                        "TOKEN_BOUND_DATA_MISMATCH",
                        "the given data does not match the page token",
                        param_name=name,
                    )
            sort_by, desc = state.sort_by, state.desc
            if state.served >= self.token_limit:
                raise _bad(
                    "PAGINATION_LIMIT_EXCEEDED",
                    f"You can only get upto {self.token_limit} records using page_token param",
                    param_name="page_token",
                )
            seq, lo = self._ordered(table, sort_by, since)
            n = min(per_page, self.token_limit - state.served)
            items, more = _slice(seq, lo, state.pos, desc, n, 0)
            served = state.served + len(items)
            page = 1
        else:
            page = self._int_param(q.get("page"), "page", 1)
            offset = (page - 1) * per_page
            if offset >= self.discrete_limit:
                raise _bad(
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    f"You can only get the first {self.discrete_limit} records without using page_token param",
                    limit=self.discrete_limit,
                )
            seq, lo = self._ordered(table, sort_by, since)
            n = min(per_page, self.discrete_limit - offset)
            items, more = _slice(seq, lo, None, desc, n, offset)
            served = offset + len(items)
        if not items:
            return Response(status_code=204)
        next_token: str | None = None
        expiry: str | None = None
        if more:
            next_token = secrets.token_hex(24)
            expires = now + _TOKEN_TTL_MS
            self.page_tokens[next_token] = _PageToken(
                module, sort_by, desc, since, items[-1], served, expires
            )
            expiry = self.org.zt(expires)
            if len(self.page_tokens) > 10_000:
                self.page_tokens = {k: v for k, v in self.page_tokens.items() if v.expires_ms > now}
        data = [self.org.render(module, table.recs[_rec_id(e)], fields) for e in items]
        return JSONResponse(
            {
                "data": data,
                "info": {
                    "call": False,
                    "per_page": per_page,
                    "next_page_token": next_token,
                    "count": len(data),
                    "sort_by": sort_by,
                    "page": page,
                    "previous_page_token": token_raw or None,
                    "page_token_expiry": expiry,
                    "sort_order": "desc" if desc else "asc",
                    "email": False,
                    "more_records": more,
                },
            }
        )

    # -- GET /crm/v8/{module}/deleted

    def list_deleted(self, request: Request, module_raw: str) -> Response:
        table = self._module(module_raw)
        q = request.query_params
        kind = q.get("type") or "all"
        if kind not in ("all", "recycle", "permanent"):
            raise _bad(
                "INVALID_DATA",
                "invalid data",
                param_name="type",
                supported_values=["all", "recycle", "permanent"],
            )
        per_page = self._int_param(q.get("per_page"), "per_page", _PER_PAGE_MAX, 1, _PER_PAGE_MAX)
        page = self._int_param(q.get("page"), "page", 1)
        since = self._since(request)
        rows = [
            d
            for d in reversed(table.deleted)
            if (kind == "all" or d.kind == kind) and (since is None or d.deleted_ms >= since)
        ]
        start = (page - 1) * per_page
        chunk = rows[start : start + per_page]
        if not chunk:
            return Response(status_code=204)
        org = self.org
        data = [
            {
                "deleted_by": org.user_json(d.deleted_by, email=False),
                "id": str(d.id),
                "display_name": d.display_name,
                "type": d.kind,
                "created_by": org.user_json(d.created_by, email=False),
                "deleted_time": org.zt(d.deleted_ms),
            }
            for d in chunk
        ]
        return JSONResponse(
            {
                "data": data,
                "info": {
                    "per_page": per_page,
                    "count": len(data),
                    "page": page,
                    "more_records": start + per_page < len(rows),
                },
            }
        )

    # -- writes

    def _batch(self, payload: Any) -> list[Any]:
        if not isinstance(payload, dict) or "data" not in payload:
            raise _bad("MANDATORY_NOT_FOUND", "required field not found", api_name="data", json_path="$.data")
        data = payload["data"]
        if not isinstance(data, list) or not data:
            raise _bad("INVALID_DATA", "invalid data", api_name="data", json_path="$.data")
        if len(data) > _BATCH_MAX:
            raise _HTTPError(
                JSONResponse(
                    {
                        "data": [
                            {
                                "code": "LIMIT_EXCEEDED",
                                "details": {"maximum_length": _BATCH_MAX, "api_name": "data"},
                                "message": "count of records in your request exceeds the limit",
                                "status": "error",
                            }
                        ]
                    },
                    400,
                )
            )
        trigger = payload.get("trigger")
        if trigger is not None and (
            not isinstance(trigger, list) or any(t not in _TRIGGERS for t in trigger)
        ):
            raise _bad("INVALID_DATA", "invalid data", api_name="trigger", json_path="$.trigger")
        return data

    def _values(self, module: str, item: Any, index: int, rec: Rec | None) -> dict[str, Any]:
        """Validated stored values of one input record; raises :class:`WriteError`."""
        base = f"$.data[{index}]"
        if not isinstance(item, dict):
            raise WriteError("INVALID_DATA", "invalid data", json_path=base)
        org = self.org
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
            values[key] = org.coerce(module, fd, raw, path, se_module)
        if item.get("$se_module") is not None:
            values["$se_module"] = se_module
        return values

    def _success(self, module: str, rec: Rec, message: str, **extra: Any) -> dict[str, Any]:
        org = self.org
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

    def _insert(self, module: str, values: dict[str, Any], index: int) -> Rec:
        org = self.org
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
        if self.runtime.faults.fail_item():
            self.runtime.stats.fault("partial_batch")
            raise WriteError("INTERNAL_ERROR", "Internal Server Error")
        now = self.now_ms()
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

    def _update(self, module: str, rec: Rec, values: dict[str, Any]) -> None:
        if self.runtime.faults.fail_item():
            self.runtime.stats.fault("partial_batch")
            raise WriteError("INTERNAL_ERROR", "Internal Server Error")
        if rec.vals is None:
            rec.vals = {}
        rec.vals.update(values)
        rec.vals["Modified_By"] = self.org.admin.id
        self.org.tables[module].touch(rec, self.now_ms())

    @staticmethod
    def _respond(results: list[dict[str, Any]], ok_status: int) -> Response:
        ok = sum(1 for r in results if r["status"] == "success")
        status = ok_status if ok == len(results) else 400 if ok == 0 else 207
        return JSONResponse({"data": results}, status)

    def _target(self, module: str, item: Any, index: int) -> Rec:
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise WriteError(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="id",
                json_path=f"$.data[{index}].id",
            )
        raw = str(item["id"])
        rec = self.org.find(module, int(raw)) if raw.isdigit() else None
        if rec is None:
            raise WriteError(
                "INVALID_DATA",
                "the id given seems to be invalid",
                api_name="id",
                json_path=f"$.data[{index}].id",
            )
        return rec

    def insert(self, module_raw: str, payload: Any) -> Response:
        module = self._module(module_raw).module
        results: list[dict[str, Any]] = []
        for i, item in enumerate(self._batch(payload)):
            try:
                rec = self._insert(module, self._values(module, item, i, None), i)
                results.append(self._success(module, rec, "record added"))
            except WriteError as exc:
                results.append(exc.body())
        return self._respond(results, 201)

    def update(self, module_raw: str, payload: Any) -> Response:
        module = self._module(module_raw).module
        results: list[dict[str, Any]] = []
        for i, item in enumerate(self._batch(payload)):
            try:
                rec = self._target(module, item, i)
                self._update(module, rec, self._values(module, item, i, rec))
                results.append(self._success(module, rec, "record updated"))
            except WriteError as exc:
                results.append(exc.body())
        return self._respond(results, 200)

    def upsert(self, module_raw: str, payload: Any) -> Response:
        table = self._module(module_raw)
        module, org = table.module, self.org
        data = self._batch(payload)
        defs = org.modules[module].fields
        checks_raw = payload.get("duplicate_check_fields")
        if checks_raw is None:
            dup = org.modules[module].duplicate_field
            checks = [dup] if dup else []
        else:
            if not isinstance(checks_raw, list) or any(
                not isinstance(c, str) or c not in defs for c in checks_raw
            ):
                raise _bad(
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
                    match = self._target(module, item, i)
                elif isinstance(item, dict):
                    for name in checks:
                        if item.get(name) is None:
                            continue
                        rid = index_for(name).get(_norm(item[name]))
                        if rid is not None and rid in table.recs:
                            match, matched_on = table.recs[rid], name
                            break
                values = self._values(module, item, i, match)
                if match is not None:
                    self._update(module, match, values)
                    results.append(
                        self._success(
                            module, match, "record updated", duplicate_field=matched_on, action="update"
                        )
                    )
                else:
                    rec = self._insert(module, values, i)
                    for name in checks:
                        if name in indexes and values.get(name) is not None:
                            indexes[name].setdefault(_norm(values[name]), rec.id)
                    results.append(
                        self._success(module, rec, "record added", duplicate_field=None, action="insert")
                    )
            except WriteError as exc:
                results.append(exc.body())
        return self._respond(results, 200)

    def delete_records(self, request: Request, module_raw: str) -> Response:
        module = self._module(module_raw).module
        raw = request.query_params.get("ids")
        if not raw:
            raise _bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="ids")
        ids = [p.strip() for p in raw.split(",") if p.strip()]
        if len(ids) > _BATCH_MAX:
            raise _bad("LIMIT_EXCEEDED", "limit exceeded", limit=_BATCH_MAX, param_name="ids")
        results: list[dict[str, Any]] = []
        for raw_id in ids:
            done = self.delete(module, [raw_id])
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
        return self._respond(results, 200)

    # -- fields

    def _settings_module(self, request: Request) -> str:
        raw = request.query_params.get("module")
        if not raw:
            raise _bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="module")
        if raw not in self.org.modules:
            raise _bad("INVALID_MODULE", "the module name given seems to be invalid", param_name="module")
        return raw

    def list_fields(self, request: Request) -> Response:
        module = self._settings_module(request)
        defs = self.org.modules[module].fields
        return JSONResponse({"fields": [self.org.field_json(module, fd) for fd in defs.values()]})

    def create_fields(self, request: Request, payload: Any) -> Response:
        module = self._settings_module(request)
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("fields"), list)
            or not payload["fields"]
        ):
            raise _bad(
                "MANDATORY_NOT_FOUND", "required field not found", api_name="fields", json_path="$.fields"
            )
        org = self.org
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
                        str(o.get("actual_value") or o.get("display_value"))
                        if isinstance(o, dict)
                        else str(o)
                        for o in raw_opts
                    )
                if self.runtime.faults.fail_item():
                    self.runtime.stats.fault("partial_batch")
                    raise WriteError("INTERNAL_ERROR", "Internal Server Error")
                fd = FieldDef(
                    api_name,
                    label.strip(),
                    data_type,
                    org.new_id(),
                    custom=True,
                    length=length,
                    options=options,
                    created_ms=self.now_ms(),
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

    # -- users

    def list_users(self, request: Request) -> Response:
        q = request.query_params
        kind = q.get("type") or "AllUsers"
        if kind not in _USER_TYPES:
            raise _bad("INVALID_DATA", "invalid data", param_name="type")
        per_page = self._int_param(q.get("per_page"), "per_page", 200, 1, 200)
        page = self._int_param(q.get("page"), "page", 1)
        org = self.org
        users = (
            org.users if kind not in ("CurrentUser", "AdminUsers", "ActiveConfirmedAdmins") else org.users[:1]
        )
        since = self._since(request)
        if since is not None:  # like records: only users modified at or after the header's second
            users = [u for u in users if u.created_ms + 3_600_000 >= since]
        start = (page - 1) * per_page
        chunk = users[start : start + per_page]
        if not chunk:
            return Response(status_code=204)
        data = []
        for user in chunk:
            admin = user.id == org.admin.id
            data.append(
                {
                    "id": str(user.id),
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                    "full_name": user.full_name,
                    "email": user.email,
                    "status": "active",
                    "confirm": True,
                    "zuid": str(60_000_000 + user.id % 1_000_000),
                    "role": {"name": "CEO" if admin else "Manager", "id": str(org.admin.id + 900_000)},
                    "profile": {
                        "name": "Administrator" if admin else "Standard",
                        "id": str(org.admin.id + (900_001 if admin else 900_002)),
                    },
                    "created_time": org.zt(user.created_ms),
                    "Modified_Time": org.zt(user.created_ms + 3_600_000),
                    "type__s": "Regular User",
                }
            )
        return JSONResponse(
            {
                "users": data,
                "info": {
                    "per_page": per_page,
                    "count": len(data),
                    "page": page,
                    "more_records": start + per_page < len(users),
                },
            }
        )

    # -- COQL

    def coql(self, payload: Any) -> Response:
        if not isinstance(payload, dict) or not isinstance(payload.get("select_query"), str):
            raise _bad(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="select_query",
                json_path="$.select_query",
            )
        try:
            query = parse_coql(payload["select_query"])
        except COQLSyntaxError as exc:
            raise _bad("SYNTAX_ERROR", exc.message, near=exc.near) from None
        try:
            rows, more = run_coql(self.org, query)
        except QueryError as exc:
            raise _bad(exc.code, exc.message, **exc.details) from None
        if not rows:
            return Response(status_code=204)
        return JSONResponse({"data": rows, "info": {"count": len(rows), "more_records": more}})

    @staticmethod
    def coql_credits(payload: Any) -> int:
        try:
            query = parse_coql(str(payload.get("select_query", "")))
        except (COQLSyntaxError, AttributeError):
            return 1
        limit = query.limit or 200
        return 1 if limit <= 200 else 2 if limit <= 1000 else 3

    # -- steering (in-process helpers and /__sandbox routes)

    def touch(
        self, module: str = "Accounts", count: int | None = None, ids: Iterable[str] | None = None
    ) -> list[str]:
        """Mark records modified now (all in the same second), lowest ids first when ``count`` is given."""
        with self.lock:
            table = self._module_or_key(module)
            chosen = [int(i) for i in ids] if ids is not None else list(table.by_id[: count or 0])
            now = self.now_ms()
            done: list[str] = []
            for id_ in chosen:
                rec = table.recs.get(id_)
                if rec is not None:
                    table.touch(rec, now)
                    done.append(str(id_))
            return done

    def delete(self, module: str, ids: Iterable[str], *, permanent: bool = False) -> list[str]:
        """Delete records (to the recycle bin unless ``permanent``); they appear under ``/deleted``."""
        from crm_upsell_zoho.sandbox_store import DeletedRec

        with self.lock:
            table = self._module_or_key(module)
            org = self.org
            now = self.now_ms()
            done: list[str] = []
            for raw in ids:
                text = str(raw)
                rec = table.recs.get(int(text)) if text.isdigit() else None
                if rec is None:
                    continue
                created_by = org.stored(table.module, rec, "Created_By")
                table.deleted.append(
                    DeletedRec(
                        rec.id,
                        None if permanent else org.display_name(table.module, rec),
                        "permanent" if permanent else "recycle",
                        now,
                        None if permanent else org.admin.id,
                        None if permanent else created_by,
                    )
                )
                table.remove(rec)
                done.append(str(rec.id))
            return done

    def set_fields(self, module: str, id_: str, values: dict[str, Any]) -> dict[str, Any]:
        """Set field values on one record as a user editing in the UI would; Modified_Time moves."""
        with self.lock:
            table = self._module_or_key(module)
            rec = table.recs.get(int(id_))
            if rec is None:
                raise KeyError(f"{table.module}/{id_}")
            defs = self.org.modules[table.module].fields
            unknown = sorted(set(values) - set(defs) - {"$se_module"})
            if unknown:
                raise KeyError(f"{table.module} has no fields {unknown}")
            se = values.get("$se_module") or self.org.stored(table.module, rec, "$se_module")
            clean = {
                k: (v if k == "$se_module" else self.org.coerce(table.module, defs[k], v, k, se))
                for k, v in values.items()
            }
            if rec.vals is None:
                rec.vals = {}
            rec.vals.update(clean)  # a user's edit: no injected faults
            table.touch(rec, self.now_ms())
            return self.org.render(table.module, rec, [k for k in values if k != "$se_module"])

    def _module_or_key(self, module: str) -> Table:
        table = self.org.tables.get(module)
        if table is None:
            raise KeyError(f"unknown module {module!r}")
        return table

    def zoho_id(self, key: str) -> str:
        """The Zoho id given to a scenario key (``co-000001``, ``owner-0001``, ``act-0000001``...)."""
        return str(self.org.ids[key])

    def planted(self) -> dict[str, str]:
        """Account id -> planted persona."""
        return {str(self.org.ids[key]): persona for key, persona in self.scenario.planted.items()}

    def credits(self) -> dict[str, int]:
        daily = self.runtime.daily
        return {"used": daily.used, "limit": daily.limit, "remaining": max(0, daily.limit - daily.used)}


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# ---- HTTP wiring ----------------------------------------------------------------------------------------

Handler = Callable[[Request, Any], Response]
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def _too_many(message: str = "Too many requests") -> JSONResponse:
    return _err("TOO_MANY_REQUESTS", message, 429)


class _ConcurrencyMiddleware:
    """429 ``TOO_MANY_REQUESTS`` when more than ``concurrency_limit`` API calls are in flight."""

    def __init__(self, app: ASGIApp, sandbox: ZohoSandbox) -> None:
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/crm/"):
            await self.app(scope, receive, send)
            return
        sb = self.sb
        if sb.in_flight >= sb.concurrency_limit:
            sb.runtime.stats.record("CONCURRENCY", 429)
            await _too_many("concurrency limit exceeded; too many requests in progress")(scope, receive, send)
            return
        sb.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            sb.in_flight -= 1


class _Wiring:
    """Wraps API handlers with auth, fault injection, rate limits, credits, stats and the store lock."""

    def __init__(self, sb: ZohoSandbox) -> None:
        self.sb = sb

    def api(
        self, handler: Handler, *, body: bool = False, cost: Callable[[Any], int] | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            route = f"{request.method} {_ID_SEGMENT.sub('/{id}', request.url.path)}"
            response = await self._run(request, handler, body, cost)
            self.sb.runtime.stats.record(route, response.status_code)
            return response

        return endpoint

    async def _run(
        self, request: Request, handler: Handler, body: bool, cost: Callable[[Any], int] | None
    ) -> Response:
        sb, runtime = self.sb, self.sb.runtime
        with sb.lock:
            denied = sb.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                return _too_many()
            if fault == "error_502":
                return Response(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html"
                )
            if fault == "error_503":
                return _err("INTERNAL_ERROR", "Internal Server Error", 503)
            return DroppedResponse()
        if not runtime.limiter.acquire().allowed:
            return _too_many()
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                return _err("INVALID_DATA", "the request body is not valid JSON", api_name="body")
        credits = cost(payload) if cost is not None else 1
        with sb.lock:
            daily = runtime.daily
            if daily.used + credits > daily.limit:
                return _err("LIMIT_EXCEEDED", "API credit limit exceeded for the day", 429)
            for _ in range(credits):
                daily.acquire()
        try:
            with sb.lock:
                return handler(request, payload)
        except _HTTPError as exc:
            return exc.response


def _p(request: Request, name: str = "module") -> str:
    return str(request.path_params[name])


def create_app(
    scenario: Scenario,
    options: SandboxOptions,
    *,
    discrete_limit: int = 2_000,
    token_limit: int = 100_000,
    concurrency_limit: int = 10,
    utc_offset_min: int = 0,
) -> Starlette:
    """The Zoho CRM emulator as a Starlette app; ``app.state.sandbox`` is its :class:`ZohoSandbox`.

    ``discrete_limit`` is how far ``page`` reaches (2,000 in Zoho; smaller in tests), ``token_limit`` how
    many records one ``page_token`` chain may serve, ``utc_offset_min`` the org's time zone offset.
    """
    from crm_upsell_zoho.sandbox_outcomes import outcome_routes

    sb = ZohoSandbox(
        scenario,
        options,
        discrete_limit=discrete_limit,
        token_limit=token_limit,
        concurrency_limit=concurrency_limit,
        utc_offset_min=utc_offset_min,
    )
    w = _Wiring(sb)
    v8 = "/crm/v8"

    async def token(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        for k, v in request.query_params.items():
            params.setdefault(k, v)
        response = sb.issue_token(params, f"{request.url.scheme}://{request.url.netloc}")
        sb.runtime.stats.record("POST /oauth/v2/token", response.status_code)
        return response

    async def not_found(request: Request) -> Response:
        return _err("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", 404)

    routes = [
        Route("/oauth/v2/token", token, methods=["POST"]),
        Route(f"{v8}/users", w.api(lambda r, b: sb.list_users(r)), methods=["GET"]),
        Route(
            f"{v8}/coql", w.api(lambda r, b: sb.coql(b), body=True, cost=sb.coql_credits), methods=["POST"]
        ),
        Route(f"{v8}/settings/fields", w.api(lambda r, b: sb.list_fields(r)), methods=["GET"]),
        Route(
            f"{v8}/settings/fields", w.api(lambda r, b: sb.create_fields(r, b), body=True), methods=["POST"]
        ),
        Route(v8 + "/{module}/deleted", w.api(lambda r, b: sb.list_deleted(r, _p(r))), methods=["GET"]),
        Route(v8 + "/{module}/upsert", w.api(lambda r, b: sb.upsert(_p(r), b), body=True), methods=["POST"]),
        Route(v8 + "/{module}", w.api(lambda r, b: sb.list_records(r, _p(r))), methods=["GET"]),
        Route(v8 + "/{module}", w.api(lambda r, b: sb.insert(_p(r), b), body=True), methods=["POST"]),
        Route(v8 + "/{module}", w.api(lambda r, b: sb.update(_p(r), b), body=True), methods=["PUT"]),
        Route(v8 + "/{module}", w.api(lambda r, b: sb.delete_records(r, _p(r))), methods=["DELETE"]),
        *control_routes(sb.runtime),
        *_zoho_control_routes(sb),
        *outcome_routes(sb),  # POST /__sandbox/play-outcomes (sandbox_outcomes.py)
        Route("/crm/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_ConcurrencyMiddleware, sandbox=sb),
            Middleware(LatencyMiddleware, options=options, prefixes=("/crm", "/oauth")),
        ],
    )
    app.state.sandbox = sb
    return app


def _zoho_control_routes(sb: ZohoSandbox) -> list[Route]:
    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {}

    async def touch_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            ids = sb.touch(str(b.get("module", "Accounts")), count=b.get("count"), ids=b.get("ids"))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"ids": ids, "modified_time": sb.org.zt(sb.now_ms())})

    async def delete_route(request: Request) -> Response:
        b = await body_of(request)
        module = str(b.get("module", "Accounts"))
        ids = b.get("ids")
        try:
            if ids is None:
                with sb.lock:
                    ids = [str(i) for i in sb._module_or_key(module).by_id[: int(b.get("count", 0))]]
            done = sb.delete(module, ids, permanent=bool(b.get("permanent", False)))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"ids": done, "deleted_time": sb.org.zt(sb.now_ms())})

    async def set_fields_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            record = sb.set_fields(
                str(b.get("module", "Accounts")), str(b["id"]), dict(b.get("values") or {})
            )
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, 404)
        except WriteError as exc:
            return JSONResponse(exc.body(), 400)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.zoho_id(k) for k in keys if k in sb.org.ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    async def credits_route(request: Request) -> Response:
        return JSONResponse(sb.credits())

    return [
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/delete", delete_route, methods=["POST"]),
        Route("/__sandbox/set-fields", set_fields_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
        Route("/__sandbox/credits", credits_route, methods=["GET"]),
    ]


# ---- module-level helpers for tests ---------------------------------------------------------------------


def sandbox_state(app: Starlette | ZohoSandbox) -> ZohoSandbox:
    """The :class:`ZohoSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, ZohoSandbox):
        return app
    state: ZohoSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | ZohoSandbox,
    module: str = "Accounts",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Mark ``count`` records (lowest ids first) or ``ids`` modified now."""
    return sandbox_state(app).touch(module, count, ids)


def delete(
    app: Starlette | ZohoSandbox, module: str, ids: Iterable[str], *, permanent: bool = False
) -> list[str]:
    """Delete records; they leave lists and COQL and appear under ``GET /{module}/deleted``."""
    return sandbox_state(app).delete(module, ids, permanent=permanent)


def set_fields(
    app: Starlette | ZohoSandbox, module: str, record_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Set field values on one record as a user would (its Modified_Time moves)."""
    return sandbox_state(app).set_fields(module, record_id, values)


def zoho_id(app: Starlette | ZohoSandbox, key: str) -> str:
    """The Zoho id given to a scenario key."""
    return sandbox_state(app).zoho_id(key)
