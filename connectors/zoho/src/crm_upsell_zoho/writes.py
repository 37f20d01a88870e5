"""The Zoho connector's writes: account field updates, follow-up tasks (always with ``trigger``), and
looking tasks up by their key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_upsell_connector.batching import unique_batches
from crm_upsell_connector.errors import ConnectorError, FatalAPIError, QuotaError, RetriableAPIError
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.models import FieldUpdate, TaskDraft, WriteResult
from crm_upsell_zoho.client import WRITE_LIMIT, data_of, info_of, zoho_error_fields
from crm_upsell_zoho.coql import MAX_IN_VALUES, coql_credits, select_in
from crm_upsell_zoho.mapping import account_update_body, chunks, task_body

if TYPE_CHECKING:
    pass
from crm_upsell_zoho.base import ZohoBase

#: Per-record codes another attempt will not fix.
NOT_RETRIABLE = frozenset(
    {
        "INVALID_DATA",
        "MANDATORY_NOT_FOUND",
        "DUPLICATE_DATA",
        "INVALID_MODULE",
        "NOT_SUPPORTED",
        "RECORD_NOT_FOUND",
        "ID_ALREADY_DELETED",
        "NO_PERMISSION",
        "CANNOT_PERFORM_ACTION",
    }
)


class ZohoWrites(ZohoBase):
    """Writing fields and tasks."""

    @staticmethod
    def _failed(refs: Sequence[str], exc: ConnectorError) -> list[WriteResult]:
        retriable = isinstance(exc, RetriableAPIError | QuotaError)
        message = exc.one_line()
        if isinstance(exc, RetriableAPIError) and not exc.not_sent:
            message += " (it may or may not have been applied)"
        return [WriteResult(ref=r, ok=False, error=message, retriable=retriable) for r in refs]

    @staticmethod
    def _record_result(ref: str, result: Mapping[str, Any] | None) -> WriteResult:
        """One ``{code, details, message, status}`` as a write result."""
        if result is None:
            return WriteResult(ref=ref, ok=False, error="Zoho returned no result for this record")
        code = str(result.get("code") or "")
        details = result.get("details") if isinstance(result.get("details"), dict) else {}
        if code == "SUCCESS" or str(result.get("status")) == "success":
            crm_id = (details or {}).get("id")
            return WriteResult(ref=ref, ok=True, crm_id=str(crm_id) if crm_id is not None else None)
        message = scrub(str(result.get("message") or "failed"))
        field_name = (details or {}).get("api_name")
        if code in ("INVALID_DATA", "RECORD_NOT_FOUND", "ID_ALREADY_DELETED") and field_name == "id":
            # The record is gone: deleted, or merged into another ("the id given seems to be invalid").
            return WriteResult(ref=ref, ok=False, error=f"{code}: {message}", retriable=False, gone=True)
        text = f"{code}: {message}" + (f" (field {scrub(str(field_name))})" if field_name else "")
        return WriteResult(ref=ref, ok=False, error=text, retriable=code not in NOT_RETRIABLE)

    async def _write(
        self,
        method: str,
        module: str,
        records: list[dict[str, Any]],
        refs: list[str],
        *,
        idempotent: bool,
        trigger: Sequence[str],
    ) -> list[WriteResult]:
        """One insert / update call. ``trigger`` is always sent: absent, Zoho would run every
        workflow, approval and blueprint on the records ("Insert Records" / "Update Records");
        ``[]`` runs none."""
        try:
            status, reply = await self.client.request(
                method,
                module,
                kind="write",
                json_body={"data": records, "trigger": list(trigger)},
                idempotent=idempotent,
                endpoint=f"{method} {module}",
                ok_statuses=(400,),  # per-record results come with a 400 when every record failed
            )
        except (FatalAPIError, RetriableAPIError, QuotaError) as exc:
            return self._failed(refs, exc)
        results = data_of(reply)
        if not results:
            code, message, _ = zoho_error_fields(reply)
            error = f"{code or f'HTTP {status}'}: {message or 'the batch was refused'}"
            return [
                WriteResult(ref=r, ok=False, error=error, retriable=(code or "") not in NOT_RETRIABLE)
                for r in refs
            ]
        return [
            self._record_result(ref, results[i] if i < len(results) else None) for i, ref in enumerate(refs)
        ]

    async def update_accounts(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """``PUT /Accounts``, 100 records a call, one result per update in input order."""
        out: list[WriteResult | None] = [None] * len(updates)
        for batch in unique_batches([u.account_id for u in updates], WRITE_LIMIT):
            bodies = [account_update_body(updates[i], self._product_fields) for i in batch]
            results = await self._write(
                "PUT",
                "Accounts",
                bodies,
                [updates[i].account_id for i in batch],
                idempotent=True,
                trigger=self.settings.account_update_triggers,
            )
            for i, result in zip(batch, results, strict=True):
                out[i] = result
        return [r for r in out if r is not None]

    async def create_tasks(self, drafts: Sequence[TaskDraft]) -> list[WriteResult]:
        """``POST /Tasks``, 100 a call; creation is not idempotent, so never blindly resent."""
        unique: dict[str, TaskDraft] = {}
        for draft in drafts:
            unique.setdefault(draft.key, draft)
        outcome: dict[str, WriteResult] = {}
        for batch in chunks(list(unique.values()), WRITE_LIMIT):
            bodies = [task_body(d, self._task_key_field) for d in batch]
            for result in await self._write(
                "POST",
                "Tasks",
                bodies,
                [d.key for d in batch],
                idempotent=False,
                trigger=self.settings.task_triggers,
            ):
                outcome[result.ref] = result
        return [outcome[d.key] for d in drafts]

    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """COQL ``select id, <key> from Tasks where <key> in (...)``, 50 keys a call, escaped."""
        key_field = self._task_key_field
        found: dict[str, str] = {}
        for chunk in chunks(list(dict.fromkeys(keys)), MAX_IN_VALUES):
            offset = 0
            limit = 200
            while True:
                query = select_in("Tasks", ["id", key_field], key_field, chunk, offset=offset, limit=limit)
                _, body = await self.client.request(
                    "POST",
                    "coql",
                    kind="coql",
                    credits=coql_credits(limit),
                    json_body={"select_query": query},
                    idempotent=True,
                    endpoint="POST coql",
                )
                rows = data_of(body)
                for row in rows:
                    key = row.get(key_field)
                    if key in chunk and row.get("id") is not None:
                        found.setdefault(str(key), str(row["id"]))
                if not (info_of(body).get("more_records") and rows):
                    break
                offset += len(rows)
        return found
