"""CRM v3 object endpoints: list, get, archive, and batch read, update and create."""

from __future__ import annotations

import bisect
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_hubspot.sandbox.catalog import (
    _ALIASES,
    _LIST_LIMIT_MAX,
    _TYPE_BY_ASSOC_ID,
    ACTIVITY_TYPES,
    ASSOCIATION_TYPES,
)
from crm_upsell_hubspot.sandbox.common import _bad, _error, _int_param, _std_error
from crm_upsell_hubspot.sandbox.records import RecordsMixin
from crm_upsell_hubspot.sandbox.store import Rec


class ObjectsMixin(RecordsMixin):
    """The ``/crm/v3/objects/{objectType}`` routes."""

    def list_objects(self, request: Request, otype_raw: str) -> Response:
        otype, table = self._table(otype_raw)
        q = request.query_params
        limit = _int_param(q.get("limit"), 10, "limit")
        limit = max(1, min(limit, _LIST_LIMIT_MAX))
        after_raw = q.get("after")
        start = 0
        if after_raw:
            if not after_raw.isdigit():
                raise _bad(f"Invalid paging cursor: {after_raw}")
            start = int(after_raw)
        archived = (q.get("archived") or "false").lower() == "true"
        props = self._props_param(request, "properties")
        assoc = [_ALIASES[a] for a in self._props_param(request, "associations") if a in _ALIASES]
        assoc = [a for a in assoc if (otype, a) in ASSOCIATION_TYPES]
        ids = table.archived if archived else table.active
        i = bisect.bisect_left(ids, start)
        page = ids[i : i + limit]
        results = [self.public(otype, table.recs[id_], props, assoc) for id_ in page]
        body: dict[str, Any] = {"results": results}
        if i + limit < len(ids):
            nxt = str(page[-1] + 1)
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return JSONResponse(body)

    def get_object(self, request: Request, otype_raw: str, id_raw: str) -> Response:
        otype, table = self._table(otype_raw)
        archived = (request.query_params.get("archived") or "false").lower() == "true"
        rec = table.recs.get(int(id_raw)) if id_raw.isdigit() else None
        if rec is not None and rec.merged_into is not None:
            rec = table.get(rec.id)  # a merged-away id answers with the merged record
        if rec is None or (rec.archived_ms is not None) != archived:
            return _error(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [id_raw]},
            )
        props = self._props_param(request, "properties")
        assoc = [_ALIASES[a] for a in self._props_param(request, "associations") if a in _ALIASES]
        return JSONResponse(
            self.public(otype, rec, props, [a for a in assoc if (otype, a) in ASSOCIATION_TYPES])
        )

    def delete_object(self, otype_raw: str, id_raw: str) -> Response:
        _otype, table = self._table(otype_raw)
        rec = table.get(int(id_raw)) if id_raw.isdigit() else None
        if rec is not None:
            table.archive(rec, self.now_ms())
        return Response(status_code=204)

    def batch_read(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        props = body.get("properties") or []
        id_prop = body.get("idProperty")
        started = self.now_ms()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            rec: Rec | None = None
            if id_prop:
                for id_ in table.active:
                    candidate = table.recs[id_]
                    if self.value(otype, candidate, id_prop) == key:
                        rec = candidate
                        break
            elif key.isdigit():
                rec = table.get(int(key))
            if rec is None:
                missing.append(key)
            else:
                results.append(self.public(otype, rec, props))
        errors = []
        if missing:
            errors.append(
                _std_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {otype.upper()} objects, they may "
                    "be deleted or not exist. Check that ids are valid.",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, started)

    def batch_update(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        started = self.now_ms()
        parsed: list[tuple[str, dict[str, str | None], str | None]] = []
        seen: set[str] = set()
        for item in inputs:
            if not isinstance(item, dict) or "id" not in item:
                raise _bad("Invalid input JSON: every input needs an 'id' and 'properties'.")
            id_ = str(item["id"])
            if id_ in seen:
                raise _bad(
                    f"Duplicate IDs found in batch input: [{id_}]. IDs must be unique", context={"ids": [id_]}
                )
            seen.add(id_)
            trace = item.get("objectWriteTraceId")
            parsed.append(
                (
                    id_,
                    self._validate_properties(otype, item.get("properties", {})),
                    str(trace) if trace is not None else None,
                )
            )
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        errors: list[dict[str, Any]] = []
        now = self.now_ms()
        for id_, values, trace in parsed:
            rec = table.get(int(id_)) if id_.isdigit() else None
            if rec is None:
                missing.append(id_)
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                ctx = {"ids": [id_]} if trace is None else {"ids": [id_], "objectWriteTraceId": [trace]}
                errors.append(
                    _std_error(
                        "INTERNAL_ERROR", "Internal error while writing this record; retry the input.", ctx
                    )
                )
                continue
            self._apply(otype, rec, values, now)
            out = self.public(otype, rec, list(values))
            if trace is not None:
                out["objectWriteTraceId"] = trace
            results.append(out)
        if missing:
            errors.insert(
                0,
                _std_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {otype.upper()} objects, they "
                    "may be deleted or not exist. Check that ids are valid.",
                    {"ids": missing},
                ),
            )
        if self.shuffle_batch_results:
            self.runtime.faults.shuffle(results)
        return self._batch_response(results, errors, started)

    def batch_create(self, otype_raw: str, body: Any) -> Response:
        otype, table = self._table(otype_raw)
        inputs = self._inputs(body)
        started = self.now_ms()
        parsed: list[tuple[dict[str, str | None], list[tuple[str, int]], str | None]] = []
        for item in inputs:
            if not isinstance(item, dict):
                raise _bad("Invalid input JSON: every input needs 'properties'.")
            values = self._validate_properties(otype, item.get("properties", {}))
            if otype in ACTIVITY_TYPES and not values.get("hs_timestamp"):
                raise _bad(
                    "Property values were not valid: "
                    + json.dumps(
                        [
                            {
                                "isValid": False,
                                "message": "hs_timestamp is required",
                                "error": "REQUIRED_PROPERTY",
                                "name": "hs_timestamp",
                            }
                        ]
                    ),
                    errors=[{"message": "hs_timestamp is required", "code": "REQUIRED_PROPERTY"}],
                )
            links: list[tuple[str, int]] = []
            for assoc in item.get("associations") or []:
                to_id = str((assoc.get("to") or {}).get("id", ""))
                for spec in assoc.get("types") or []:
                    type_id = spec.get("associationTypeId")
                    to_type = (
                        _TYPE_BY_ASSOC_ID.get((otype, int(type_id))) if isinstance(type_id, int) else None
                    )
                    if to_type is None or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                        raise _bad(
                            f"{spec.get('associationCategory')} {type_id} is not a valid association "
                            f"type between {otype} and any object.",
                            subCategory="INVALID_ASSOCIATION",
                        )
                    if not to_id.isdigit():
                        raise _bad(f"Invalid association target id: {to_id}")
                    links.append((to_type, int(to_id)))
            trace = item.get("objectWriteTraceId")
            parsed.append((values, links, str(trace) if trace is not None else None))
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        now = self.now_ms()
        for index, (values, links, trace) in enumerate(parsed):
            ctx: dict[str, list[str]] = {"inputIndex": [str(index)]}
            if trace is not None:
                ctx["objectWriteTraceId"] = [trace]
            absent = [str(tid) for to_type, tid in links if self.tables[to_type].get(tid) is None]
            if absent:
                errors.append(
                    _std_error(
                        "VALIDATION_ERROR",
                        f"Associated object(s) not found: {absent}",
                        {**ctx, "ids": absent},
                        sub_category="ASSOCIATION_TARGET_NOT_FOUND",
                    )
                )
                continue
            if self.runtime.faults.fail_item():
                self.runtime.stats.fault("partial_batch")
                errors.append(
                    _std_error(
                        "INTERNAL_ERROR", "Internal error while creating this record; retry the input.", ctx
                    )
                )
                continue
            bucket = "activities" if otype in ACTIVITY_TYPES else otype
            rec = Rec(self._new_id(bucket), None, now, now)
            defaults: dict[str, str | None] = {"hs_task_status": "NOT_STARTED"} if otype == "tasks" else {}
            rec.props = {**defaults, **values}
            table.add(rec)
            for to_type, tid in links:
                self._link(otype, rec.id, to_type, tid)
            out = self.public(otype, rec, list(rec.props))
            if trace is not None:
                out["objectWriteTraceId"] = trace
            results.append(out)
        if self.shuffle_batch_results:
            self.runtime.faults.shuffle(results)
        return self._batch_response(results, errors, started, ok_status=201)
