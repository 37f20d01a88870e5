"""The state of one emulated Zoho CRM org and the helpers every API area uses.

The API areas (``auth``, ``fields``, ``records``, ``writes``, ``coql``, ``related``, ``notes``, ``users``,
``deleted``) are modules of functions over a :class:`ZohoSandbox`; ``app`` wires them into routes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from crm_upsell_connector.sandbox.plumbing import ConcurrencyGate, HTTPError
from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxRuntime
from crm_upsell_zoho.sandbox.org import Org
from crm_upsell_zoho.sandbox.store import DeletedRec, Table, parse_zoho_time
from crm_upsell_zoho.sandbox.values import coerce

__all__ = ["FIELDS_MAX", "PER_PAGE_MAX", "PageToken", "ZohoSandbox", "bad", "err"]

PER_PAGE_MAX = 200
# GET /{module}: at most 50 field api_names in ``fields`` ("Get Records",
# https://www.zoho.com/crm/developer/docs/api/v8/get-records.html).
FIELDS_MAX = 50


def err(code: str, message: str, status: int = 400, **details: Any) -> JSONResponse:
    """Zoho's error body ``{code, details, message, status: "error"}``."""
    return JSONResponse({"code": code, "details": details, "message": message, "status": "error"}, status)


def bad(code: str, message: str, status: int = 400, **details: Any) -> HTTPError:
    """An :class:`HTTPError` carrying Zoho's error body (raise it from a handler)."""
    return HTTPError(err(code, message, status, **details))


@dataclass(slots=True)
class PageToken:
    """What a ``next_page_token`` is bound to (module, sort, If-Modified-Since) and where it stands."""

    module: str
    sort_by: str
    desc: bool
    since_ms: int | None
    pos: Any
    served: int
    expires_ms: int


class ZohoSandbox:
    """The state of one emulated Zoho CRM org; the API areas' functions read and change it."""

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
        self.gate = ConcurrencyGate(concurrency_limit)
        #: insert / update / upsert calls that named no ``trigger``, and automations asked for.
        self.writes_without_trigger = 0
        self.triggers_fired: Counter[str] = Counter()
        #: whether the API user's profile may list every note (``GET /Notes``); see ``notes``.
        self.notes_listable = True
        self.tokens: dict[str, int] = {}  # issued access token -> expiry (sandbox ms)
        self.page_tokens: dict[str, PageToken] = {}
        self.filtered: dict[tuple[str, str, int, int], list[Any]] = {}
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

    def module_table(self, raw: str) -> Table:
        table = self.org.tables.get(raw)
        if table is None:
            raise bad("INVALID_MODULE", "the module name given seems to be invalid", resource_path_index=0)
        return table

    # -- request helpers shared by the API areas

    def fields_param(self, module: str, raw: str | None) -> list[str]:
        if raw is None or not raw.strip():
            raise bad("REQUIRED_PARAM_MISSING", "required param is missing", param_name="fields")
        names = list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        if len(names) > FIELDS_MAX:
            raise bad("LIMIT_EXCEEDED", "limit exceeded", limit=FIELDS_MAX, param_name="fields")
        defs = self.org.modules[module].fields
        for name in names:
            # ``$se_module`` is a key of activities (What_Id's module); Notes name the parent's
            # module inside Parent_Id ("Get Notes").
            if name not in defs and not (name == "id" or (name == "$se_module" and module != "Notes")):
                raise bad("INVALID_DATA", "invalid data", param_name="fields", api_name=name)
        return names

    @staticmethod
    def int_param(raw: str | None, name: str, default: int, low: int = 1, high: int | None = None) -> int:
        if raw in (None, ""):
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise bad("INVALID_DATA", "invalid data", param_name=name) from None
        if value < low or (high is not None and value > high):
            raise bad("INVALID_DATA", "invalid data", param_name=name)
        return value

    def since(self, request: Request) -> int | None:
        raw = request.headers.get("if-modified-since")
        if raw is None:
            return None
        ms = parse_zoho_time(raw)
        if ms is None or "T" not in raw:
            raise bad(
                "PATTERN_NOT_MATCHED",
                "Please check whether the input values are correct",
                param_name="If-Modified-Since",
            )
        return ms // 1000 * 1000  # Zoho compares at second precision

    # -- steering (in-process helpers and /__sandbox routes)

    def touch(
        self, module: str = "Accounts", count: int | None = None, ids: Iterable[str] | None = None
    ) -> list[str]:
        """Mark records modified now (all in the same second), lowest ids first when ``count`` is given."""
        with self.lock:
            table = self.module_or_key(module)
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
        with self.lock:
            table = self.module_or_key(module)
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
            table = self.module_or_key(module)
            rec = table.recs.get(int(id_))
            if rec is None:
                raise KeyError(f"{table.module}/{id_}")
            defs = self.org.modules[table.module].fields
            unknown = sorted(set(values) - set(defs) - {"$se_module"})
            if unknown:
                raise KeyError(f"{table.module} has no fields {unknown}")
            se = values.get("$se_module") or self.org.stored(table.module, rec, "$se_module")
            clean = {
                k: (v if k == "$se_module" else coerce(self.org, table.module, defs[k], v, k, se))
                for k, v in values.items()
            }
            if rec.vals is None:
                rec.vals = {}
            rec.vals.update(clean)  # a user's edit: no injected faults
            table.touch(rec, self.now_ms())
            return self.org.render(table.module, rec, [k for k in values if k != "$se_module"])

    def module_or_key(self, module: str) -> Table:
        table = self.org.tables.get(module)
        if table is None:
            raise KeyError(f"unknown module {module!r}")
        return table

    def expire_tokens(self) -> int:
        """End every issued access token now (Zoho then answers 401 ``INVALID_TOKEN``)."""
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)

    def zoho_id(self, key: str) -> str:
        """The Zoho id given to a scenario key (``co-000001``, ``owner-0001``, ``act-0000001``...)."""
        return str(self.org.ids[key])

    def planted(self) -> dict[str, str]:
        """Account id -> planted persona."""
        return {str(self.org.ids[key]): persona for key, persona in self.scenario.planted.items()}

    def credits(self) -> dict[str, int]:
        daily = self.runtime.daily
        return {"used": daily.used, "limit": daily.limit, "remaining": max(0, daily.limit - daily.used)}
