"""An in-memory CRM behind the Connector interface, for unit tests of sync and apply semantics.

It keeps records sorted by modification stamp like a CRM search index and can be told to fail
at a chosen call, so tests can crash a sync or an apply at an exact point.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from crm_upsell_connector.connector import CallStats, Connector
from crm_upsell_connector.errors import RetriableAPIError
from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    CheckResult,
    FieldSpec,
    FieldUpdate,
    Page,
    Record,
    Stream,
    TaskDraft,
    WriteResult,
)

T0 = datetime(2026, 10, 1, tzinfo=UTC)


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


class FakeCRM:
    def __init__(self, accounts: int = 25) -> None:
        self.accounts: dict[str, Account] = {}
        self.tasks: dict[str, Activity] = {}
        self.archived: dict[str, datetime] = {}
        self._ids = itertools.count(10_000)
        for i in range(accounts):
            self.accounts[str(i + 1)] = Account(
                id=str(i + 1),
                name=f"Company {i + 1}",
                owner_id="o1",
                updated_at=T0 + timedelta(minutes=i // 5),
            )

    def touch(self, account_id: str, when: datetime) -> None:
        self.accounts[account_id] = self.accounts[account_id].model_copy(update={"updated_at": when})

    def new_id(self) -> str:
        return str(next(self._ids))


class FakeConnector(Connector):
    streams: ClassVar[dict[str, Stream]] = {"accounts": Stream.ACCOUNTS, "tasks": Stream.ACTIVITIES}
    page_size = 5

    def __init__(self, crm: FakeCRM) -> None:
        self.crm = crm
        self._stats = CallStats()
        self.fail_at_call: int | None = None  # raise Crash when this call number is reached
        self.create_then_crash = False  # create the tasks, then lose the answer
        self.last_skip: frozenset[str] = frozenset()
        self.reject: dict[str, str] = {}  # account id -> why the CRM refuses to write it
        self.sent_updates: list[str] = []  # account ids written to, in order

    @property
    def stats(self) -> CallStats:
        return self._stats

    def _call(self) -> None:
        self._stats.calls += 1
        if self.fail_at_call is not None and self._stats.calls >= self.fail_at_call:
            raise Crash(f"crash at call {self._stats.calls}")

    def _records(self, stream: str) -> list[Record]:
        source: dict[str, Account] | dict[str, Activity] = (
            self.crm.accounts if stream == "accounts" else self.crm.tasks
        )
        return sorted(source.values(), key=lambda r: (r.updated_at, int(r.id)))

    async def check(self) -> list[CheckResult]:
        return [CheckResult(item="fake", ok=True)]

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        self.last_skip = skip_ids
        records = self._records(stream)
        if since is not None:
            records = [
                r
                for r in records
                if r.updated_at >= since and not (r.updated_at == since and r.id in skip_ids)
            ]
        start = int(resume or 0)
        if start == 0 and not records:
            self._call()
            yield Page(stream=stream)
            return
        while start < len(records):
            self._call()
            chunk = records[start : start + self.page_size]
            start += len(chunk)
            more = start < len(records)
            yield Page(
                stream=stream,
                records=chunk,
                resume=str(start) if since is None and more else None,
                watermark=chunk[-1].updated_at if since is not None else None,
            )

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        self._call()
        ids = [i for i, when in self.crm.archived.items() if since is None or when >= since]
        yield Page(stream=stream, deleted_ids=ids)

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        self._call()
        return []

    async def update_accounts(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        self._call()
        results = []
        for u in updates:
            self.sent_updates.append(u.account_id)
            account = self.crm.accounts.get(u.account_id)
            if account is None:
                results.append(
                    WriteResult(
                        ref=u.account_id, ok=False, error="no such account", retriable=False, gone=True
                    )
                )
                continue
            if u.account_id in self.reject:
                results.append(
                    WriteResult(ref=u.account_id, ok=False, error=self.reject[u.account_id], retriable=False)
                )
                continue
            self.crm.accounts[u.account_id] = account.model_copy(
                update={"product_fields": {**account.product_fields, **u.values}}
            )
            results.append(WriteResult(ref=u.account_id, ok=True, crm_id=u.account_id))
        return results

    async def create_tasks(self, drafts: Sequence[TaskDraft]) -> list[WriteResult]:
        self._call()
        results = []
        for d in drafts:
            task_id = self.crm.new_id()
            self.crm.tasks[task_id] = Activity(
                id=task_id,
                kind=ActivityKind.TASK,
                account_id=d.account_id,
                owner_id=d.owner_id,
                subject=d.subject,
                status="open",
                upsell_key=d.key,
                updated_at=datetime.now(UTC),
            )
            results.append(WriteResult(ref=d.key, ok=True, crm_id=task_id))
        if self.create_then_crash:
            raise RetriableAPIError("the connection dropped after the request was sent")
        return results

    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        self._call()
        wanted = set(keys)
        return {
            t.upsell_key: t.id for t in self.crm.tasks.values() if t.upsell_key in wanted and t.upsell_key
        }

    async def close(self) -> None:
        return None
