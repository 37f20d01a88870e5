"""Writing to HubSpot: the product's company properties and its tasks, by batch.

A batch HubSpot rejects whole (400) is halved until the bad input fails alone; a write to a merged
or deleted record comes back as ``gone``.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm_upsell_connector.batching import chunked, unique_batches
from crm_upsell_connector.errors import ConnectorError, FatalAPIError, RetriableAPIError
from crm_upsell_connector.models import FieldUpdate, TaskDraft, WriteResult
from crm_upsell_hubspot.client import BATCH_LIMIT, context_values, error_messages, results_of
from crm_upsell_hubspot.mapping import company_update_input, task_create_input
from crm_upsell_hubspot.streams import HubSpotBase

_NOT_RETRIABLE = frozenset(
    {"VALIDATION_ERROR", "OBJECT_NOT_FOUND", "PROPERTY_DOESNT_EXIST", "INVALID_PARAMS"}
)


class WritesMixin(HubSpotBase):
    """``update_accounts`` and ``create_tasks``."""

    @staticmethod
    def _failed(refs: Sequence[str], exc: ConnectorError) -> list[WriteResult]:
        retriable = isinstance(exc, RetriableAPIError)
        message = exc.one_line()
        if retriable and not getattr(exc, "not_sent", False):
            message += " (it may or may not have been applied)"
        return [WriteResult(ref=r, ok=False, error=message, retriable=retriable) for r in refs]

    async def update_accounts(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for batch in unique_batches([u.account_id for u in updates], BATCH_LIMIT):
            out.extend(await self._update_batch([updates[i] for i in batch]))
        return out

    async def _update_batch(self, updates: list[FieldUpdate]) -> list[WriteResult]:
        refs = [u.account_id for u in updates]
        try:
            reply = await self.client.post(
                "/crm/v3/objects/companies/batch/update",
                {"inputs": [company_update_input(u, self.settings.property_prefix) for u in updates]},
                idempotent=True,
            )
        except FatalAPIError as exc:
            if exc.status_code == 400 and len(updates) > 1:
                # HubSpot rejects a whole batch for one bad input: halve it to find the culprit.
                mid = len(updates) // 2
                return await self._update_batch(updates[:mid]) + await self._update_batch(updates[mid:])
            return self._failed(refs, exc)
        except RetriableAPIError as exc:
            return self._failed(refs, exc)
        done = {str(r.get("id")) for r in results_of(reply)}
        # A write to a merged-away id lands on the merged record and comes back under its id (the
        # trace id says which input it was): the account we meant is gone from HubSpot.
        merged = {
            str(r["objectWriteTraceId"]): str(r.get("id"))
            for r in results_of(reply)
            if r.get("objectWriteTraceId") not in (None, "")
            and str(r.get("id")) != str(r["objectWriteTraceId"])
        }
        errors: dict[str, tuple[str, bool]] = {}
        missing: set[str] = set()
        unplaced: list[tuple[str, bool]] = []
        for error, message in error_messages(reply.get("errors")):
            retriable = str(error.get("category")) not in _NOT_RETRIABLE
            ids = context_values(error, "ids", "id")
            for ident in ids:
                errors[ident] = (message, retriable)
                if str(error.get("category")) == "OBJECT_NOT_FOUND":
                    missing.add(ident)
            if not ids:
                unplaced.append((message, retriable))
        results: list[WriteResult] = []
        for ref in refs:
            if ref in merged or ref in missing:
                why = f"merged into company {merged[ref]}" if ref in merged else errors[ref][0]
                results.append(WriteResult(ref=ref, ok=False, error=why, retriable=False, gone=True))
            elif ref in errors:
                message, retriable = errors[ref]
                results.append(WriteResult(ref=ref, ok=False, error=message, retriable=retriable))
            elif ref in done:
                results.append(WriteResult(ref=ref, ok=True, crm_id=ref))
            else:
                message, retriable = unplaced[0] if unplaced else ("HubSpot did not confirm the update", True)
                results.append(WriteResult(ref=ref, ok=False, error=message, retriable=retriable))
        return results

    async def create_tasks(self, drafts: Sequence[TaskDraft]) -> list[WriteResult]:
        unique: dict[str, TaskDraft] = {}
        for draft in drafts:
            unique.setdefault(draft.key, draft)
        outcome: dict[str, WriteResult] = {}
        for batch in chunked(list(unique.values()), BATCH_LIMIT):
            for result in await self._create_batch(batch):
                outcome[result.ref] = result
        return [outcome[d.key] for d in drafts]

    async def _create_batch(self, drafts: list[TaskDraft]) -> list[WriteResult]:
        refs = [d.key for d in drafts]
        key_property = self.options.task_key_property
        try:
            reply = await self.client.post(
                "/crm/v3/objects/tasks/batch/create",
                {"inputs": [task_create_input(d, self.settings.property_prefix) for d in drafts]},
                idempotent=False,  # never blindly resent: a second call would create a second task
            )
        except FatalAPIError as exc:
            if exc.status_code == 400 and len(drafts) > 1:
                # A 400 creates nothing; halve the batch so that one bad draft fails alone.
                mid = len(drafts) // 2
                return await self._create_batch(drafts[:mid]) + await self._create_batch(drafts[mid:])
            return self._failed(refs, exc)
        except RetriableAPIError as exc:
            return self._failed(refs, exc)
        created: dict[str, str] = {}
        for item in results_of(reply):
            props = item.get("properties")
            key = item.get("objectWriteTraceId") or (
                props.get(key_property) if isinstance(props, dict) else None
            )
            if key is not None and item.get("id") is not None:
                created[str(key)] = str(item["id"])
        errors: dict[str, tuple[str, bool]] = {}
        gone: set[str] = set()
        unplaced: list[tuple[str, bool]] = []
        for error, message in error_messages(reply.get("errors")):
            retriable = str(error.get("category")) not in _NOT_RETRIABLE
            keys = context_values(error, "objectWriteTraceId") or [
                refs[int(i)]
                for i in context_values(error, "inputIndex")
                if i.isdigit() and int(i) < len(refs)
            ]
            for key in keys:
                errors[key] = (message, retriable)
                # The company to associate the task with no longer exists (deleted or archived).
                if "ASSOCIATION_TARGET_NOT_FOUND" in str(error.get("subCategory") or ""):
                    gone.add(key)
            if not keys:
                unplaced.append((message, retriable))
        results: list[WriteResult] = []
        for ref in refs:
            if ref in created:
                results.append(WriteResult(ref=ref, ok=True, crm_id=created[ref]))
            elif ref in gone:
                results.append(
                    WriteResult(ref=ref, ok=False, error=errors[ref][0], retriable=False, gone=True)
                )
            elif ref in errors:
                message, retriable = errors[ref]
                results.append(WriteResult(ref=ref, ok=False, error=message, retriable=retriable))
            else:
                message, retriable = (
                    unplaced[0]
                    if unplaced
                    else ("HubSpot did not confirm the task; find_tasks will tell", True)
                )
                results.append(WriteResult(ref=ref, ok=False, error=message, retriable=retriable))
        return results
