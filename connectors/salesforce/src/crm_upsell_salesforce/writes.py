"""Writes through sObject Collections: account fields and follow-up tasks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crm_upsell_connector.batching import chunked, unique_batches
from crm_upsell_connector.errors import ConfigError, ConnectorError, FatalAPIError, RetriableAPIError
from crm_upsell_connector.models import (
    FieldUpdate,
    TaskDraft,
    WriteResult,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.client import COLLECTION_LIMIT, error_code, error_text
from crm_upsell_salesforce.mapping import (
    account_update_record,
    task_record,
)

if TYPE_CHECKING:
    pass

from crm_upsell_salesforce.querying import QueryingBase

log = logging.getLogger(__name__)


FIND_CHUNK = 100  # keys per find_tasks query (keeps the URL short)
# Record errors another try may fix; anything else (bad id, deleted record, invalid value) will not.
_RETRIABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_RUNNING_TOO_LONG",
        "SERVER_UNAVAILABLE",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    }
)


class WritesMixin(QueryingBase):
    """``update_accounts``, ``create_tasks`` and ``find_tasks``."""

    @staticmethod
    def _failed(refs: Sequence[str], exc: ConnectorError) -> list[WriteResult]:
        retriable = isinstance(exc, RetriableAPIError)
        return [WriteResult(ref=r, ok=False, error=exc.one_line(), retriable=retriable) for r in refs]

    @staticmethod
    def _results(refs: Sequence[str], reply: Any) -> list[WriteResult]:
        """Collections answer one result per record, in the order sent."""
        items = reply if isinstance(reply, list) else []
        out: list[WriteResult] = []
        for i, ref in enumerate(refs):
            item = items[i] if i < len(items) and isinstance(items[i], dict) else None
            if item is None:
                out.append(
                    WriteResult(ref=ref, ok=False, error="Salesforce returned no result for this record")
                )
                continue
            if item.get("success") is True:
                crm_id = str(item["id"]) if item.get("id") else None
                out.append(WriteResult(ref=ref, ok=True, crm_id=crm_id))
                continue
            errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
            codes = {error_code(e) for e in errors}
            message = "; ".join(error_text(e) for e in errors) or "Salesforce did not save the record"
            retriable = bool(codes & _RETRIABLE_CODES)
            # The record is no longer there (deleted, or merged away: the merge deletes it) and never
            # will be: ENTITY_IS_DELETED, or an id Salesforce does not know (INVALID_CROSS_REFERENCE_KEY
            # on no field, i.e. on the record's own id; NOT_FOUND). REST API Developer Guide, "Status
            # Codes and Error Responses"; SOAP API Developer Guide, "StatusCode".
            gone = bool(codes & {"ENTITY_IS_DELETED", "NOT_FOUND"}) or any(
                error_code(e) == "INVALID_CROSS_REFERENCE_KEY" and not e.get("fields") for e in errors
            )
            out.append(
                WriteResult(ref=ref, ok=False, error=message, retriable=retriable and not gone, gone=gone)
            )
        return out

    async def update_accounts(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(updates)
        sendable: list[int] = []
        records: dict[int, dict[str, Any]] = {}
        for i, update in enumerate(updates):
            try:
                records[i] = account_update_record(update, self.options)
            except ValueError as exc:
                results[i] = WriteResult(ref=update.account_id, ok=False, error=str(exc), retriable=False)
            else:
                sendable.append(i)
        refs = [updates[i].account_id for i in sendable]
        for batch in unique_batches(refs, COLLECTION_LIMIT):
            positions = [sendable[j] for j in batch]
            batch_refs = [updates[p].account_id for p in positions]
            try:
                reply = await self.client.request(
                    "PATCH",
                    "composite/sobjects",
                    json={"allOrNone": False, "records": [records[p] for p in positions]},
                    idempotent=True,  # setting the same values twice changes nothing
                    endpoint="PATCH composite/sobjects",
                )
            except (FatalAPIError, RetriableAPIError) as exc:
                done = self._failed(batch_refs, exc)
            else:
                done = self._results(batch_refs, reply)
            for p, result in zip(positions, done, strict=True):
                results[p] = result
        return [r for r in results if r is not None]

    async def create_tasks(self, drafts: Sequence[TaskDraft]) -> list[WriteResult]:
        """Tasks by Collections create. Not idempotent: never resent blindly. A failure that may have
        created some of them is raised, so that the caller asks ``find_tasks`` instead of guessing."""
        unique: dict[str, TaskDraft] = {}
        for draft in drafts:
            unique.setdefault(draft.key, draft)
        outcome: dict[str, WriteResult] = {}
        for batch in chunked(list(unique.values()), COLLECTION_LIMIT):
            refs = [d.key for d in batch]
            try:
                reply = await self.client.request(
                    "POST",
                    "composite/sobjects",
                    json={"allOrNone": False, "records": [task_record(d, self.options) for d in batch]},
                    idempotent=False,
                    endpoint="POST composite/sobjects",
                )
            except FatalAPIError as exc:
                results = self._failed(refs, exc)  # a 4xx on the whole request created nothing
            else:
                results = self._results(refs, reply)
            for result in results:
                outcome[result.ref] = result
        return [outcome[d.key] for d in drafts]

    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        key_field = self.options.task_key_field
        found: dict[str, str] = {}
        for chunk in chunked(list(dict.fromkeys(k for k in keys if k)), FIND_CHUNK):
            query = soql.select("Task", ("Id", key_field), where=[soql.in_condition(key_field, chunk)])
            try:
                async for records, _nxt in self.client.query_pages(query, endpoint="GET query Task keys"):
                    lowered = key_field.lower()
                    for record in records:
                        key = next((v for k, v in record.items() if k.lower() == lowered), None)
                        if key in chunk and record.get("Id"):
                            found.setdefault(str(key), str(record["Id"]))
            except FatalAPIError as exc:
                # A hidden or missing key field says nothing about which tasks exist: never read it
                # as "none found" (that would create every task again).
                hidden = exc.error_code == "INVALID_FIELD" and key_field.lower() in exc.message.lower()
                if hidden or exc.error_code == "INSUFFICIENT_ACCESS":
                    raise ConfigError(
                        f"Salesforce does not let the integration user read the task key field {key_field} "
                        f"({exc.error_code}), so tasks already created cannot be found",
                        hint="run 'crm-upsell setup' (it creates the field and grants access), then "
                        "'crm-upsell check'",
                    ) from None
                raise
        return found
