"""The Salesforce connector: reads every stream by SOQL, sets up the custom fields, writes fields and tasks.

Reads are one SOQL query per stream (``SystemModstamp >= cursor`` when incremental), paged through
``nextRecordsUrl`` at 2,000 records a batch, so a stream costs ``ceil(N / 2000)`` calls. Deletes
come from getDeleted inside its 15-day window and from ``queryAll`` (``IsDeleted = true``) beyond
it. Writes go through sObject Collections, 200 records a call, ``allOrNone = false``, each record's
result mapped back by position. Fields are created with the Tooling API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from crm_upsell_connector.batching import chunked, unique_batches
from crm_upsell_connector.connector import CallStats, Connector, ConnectorContext, PluginBase, fields_check
from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.errors import ConfigError, ConnectorError, FatalAPIError, RetriableAPIError
from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, ACCOUNT_FIELDS
from crm_upsell_connector.models import (
    CheckResult,
    FieldSpec,
    FieldUpdate,
    Page,
    Stream,
    TaskDraft,
    WriteResult,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.auth import build_auth
from crm_upsell_salesforce.client import COLLECTION_LIMIT, SalesforceClient, error_code, error_text
from crm_upsell_salesforce.mapping import (
    MODSTAMP,
    SOBJECTS,
    MappingOptions,
    account_update_record,
    custom_field,
    fields_for,
    map_records,
    modified_at,
    parse_datetime,
    task_record,
)
from crm_upsell_salesforce.settings import SalesforceSettings

if TYPE_CHECKING:
    from crm_upsell_connector.sandbox.server import SandboxOptions
    from crm_upsell_connector.secrets import SecretResolver

log = logging.getLogger(__name__)

#: connector stream -> canonical stream, in the order to sync.
STREAMS: dict[str, Stream] = {
    "users": Stream.OWNERS,
    "products": Stream.PRODUCTS,
    "accounts": Stream.ACCOUNTS,
    "contacts": Stream.CONTACTS,
    "opportunities": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "assets": Stream.LINE_ITEMS,
    "tasks": Stream.ACTIVITIES,
    "events": Stream.ACTIVITIES,
}
#: Where the product's fields live: tasks' custom fields are defined on Activity (Task and Event).
FIELD_OBJECTS = {"account": "Account", "task": "Activity"}
GET_DELETED_DAYS = 15
_GET_DELETED_MARGIN = timedelta(hours=1)
FIND_CHUNK = 100  # keys per find_tasks query (keeps the URL short)
SANDBOX_SECRET_ENV = "CRM_UPSELL_SANDBOX_SALESFORCE_CLIENT_SECRET"  # noqa: S105 - a variable name
# Record errors another try may fix; anything else (bad id, deleted record, invalid value) will not.
_RETRIABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_RUNNING_TOO_LONG",
        "SERVER_UNAVAILABLE",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    }
)
_NO_SUCH_COLUMN = re.compile(r"No such column '([A-Za-z0-9_.]+)'")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class SalesforceConnector(Connector):
    """One Salesforce org, through a connected app (JWT bearer, refresh token or client credentials)."""

    streams: Mapping[str, Stream] = STREAMS
    write_batch_size = COLLECTION_LIMIT

    def __init__(
        self,
        settings: SalesforceSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        # stream -> optional fields (lower case) this org turned out not to have
        self._missing: dict[str, set[str]] = {}
        try:
            self.options = MappingOptions.build(
                settings.field_prefix,
                context.account_fields,
                settings.product_extra_fields,
                direction_field=settings.activity_direction_field,
                outcome_field=settings.meeting_outcome_field,
            )
        except ValueError as exc:
            raise ConfigError(f"a mapped account field is not usable in Salesforce: {exc}") from None
        auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /services/oauth2/token"),
        )
        self.client = SalesforceClient(
            auth=auth,
            api_version=settings.api_version,
            daily_share=settings.daily_api_share,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            http=context.http,
            transport=transport,
        )

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def token_refreshes(self) -> int:
        return self.client.auth.refreshes

    async def close(self) -> None:
        await self.client.close()

    # ---- reading ------------------------------------------------------------------------------

    def _sobject(self, stream: str) -> str:
        if stream not in STREAMS:
            raise ConfigError(f"Salesforce has no stream {stream!r}; streams are {', '.join(STREAMS)}")
        return SOBJECTS[stream]

    def _optional_fields(self, stream: str) -> set[str]:
        """Fields a query may leave out when the org lacks them (before ``setup``, or hidden by
        field-level security): the product's own fields and the mapped account fields."""
        if stream == "accounts":
            own = {self.options.product_field(n) for n in ACCOUNT_FIELD_NAMES}
            return {f.lower() for f in own | {api for _, api in self.options.account_fields}}
        if stream == "tasks":
            return {f.lower() for f in (self.options.task_key_field, self.options.direction_field) if f}
        if stream == "events":
            return {self.options.outcome_field.lower()} if self.options.outcome_field else set()
        if stream == "products":
            return {f.lower() for f in self.options.product_extra_fields}
        return set()

    def _fields(self, stream: str) -> tuple[str, ...]:
        missing = self._missing.get(stream, set())
        return tuple(f for f in fields_for(stream, self.options) if f.lower() not in missing)

    def _drop_missing(self, stream: str, exc: FatalAPIError) -> bool:
        """Leave out an optional field Salesforce says does not exist; False where it is not one."""
        if exc.error_code != "INVALID_FIELD":
            return False
        match = _NO_SUCH_COLUMN.search(exc.message)
        column = match.group(1).lower() if match else ""
        missing = self._missing.setdefault(stream, set())
        if column not in self._optional_fields(stream) or column in missing:
            return False
        ours = self._own_fields(stream)
        # ``setup`` creates the product's fields together: one missing means all are, which spares
        # a call per field (Salesforce names one unknown column per answer).
        dropped = ours if column in ours else {column}
        missing.update(dropped)
        log.warning(
            "Salesforce %s has no field %s (or the integration user cannot see it): read as empty; "
            "run 'crm-upsell setup' for the product's fields, and check field-level security",
            SOBJECTS[stream],
            f"{self.settings.field_prefix}*__c" if column in ours else (match.group(1) if match else column),
        )
        return True

    def _own_fields(self, stream: str) -> set[str]:
        if stream == "accounts":
            return {self.options.product_field(n).lower() for n in ACCOUNT_FIELD_NAMES}
        if stream == "tasks":
            return {self.options.task_key_field.lower()}
        return set()

    async def _query(
        self,
        stream: str,
        build: Callable[[tuple[str, ...]], str],
        *,
        resume: str | None = None,
        resource: str = "query",
        endpoint: str,
        totals: list[int] | None = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        """``query_pages`` for a query over the stream's fields, without the optional fields the
        org turns out not to have (one extra call the first time each is found missing)."""
        while True:
            batches = self.client.query_pages(
                build(self._fields(stream)),
                resource=resource,
                resume=resume,
                endpoint=endpoint,
                totals=totals,
            )
            try:
                first = await anext(batches)
            except StopAsyncIteration:
                return
            except FatalAPIError as exc:
                if resume is None and self._drop_missing(stream, exc):
                    continue
                raise
            yield first
            async for batch in batches:
                yield batch
            return

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        sobject = self._sobject(stream)
        if since is None:
            pages = self._full_read(stream, lambda f: soql.select(sobject, f, order_by=("Id",)), resume)
        else:
            where = [soql.condition(MODSTAMP, ">=", since)]
            pages = self._incremental_read(
                stream,
                lambda f: soql.select(sobject, f, where=where, order_by=(MODSTAMP, "Id")),
                since,
                skip_ids,
            )
        async for page in pages:
            yield page

    async def _full_read(
        self, stream: str, build: Callable[[tuple[str, ...]], str], resume: str | None
    ) -> AsyncIterator[Page]:
        """Every record; each page's ``resume`` is the ``nextRecordsUrl`` to continue from."""
        endpoint = f"GET query {SOBJECTS[stream]}"
        totals: list[int] = []
        batches = self._query(stream, build, resume=resume, endpoint=endpoint, totals=totals)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            return
        except FatalAPIError as exc:
            if not resume or exc.error_code not in ("INVALID_QUERY_LOCATOR", "NOT_FOUND"):
                raise
            # Query locators expire: an interrupted full read starts over, and says so.
            log.warning(
                "the saved Salesforce query position for %s has expired (%s); the full read starts "
                "again from the beginning",
                stream,
                exc.error_code,
            )
            batches = self._query(stream, build, endpoint=endpoint, totals=totals)
            try:
                first = await anext(batches)
            except StopAsyncIteration:
                return
        records, nxt = first
        total = totals[0] if totals else None
        yield Page(stream=stream, records=map_records(stream, records, self.options), resume=nxt, total=total)
        async for records, nxt in batches:
            yield Page(
                stream=stream, records=map_records(stream, records, self.options), resume=nxt, total=total
            )

    async def _incremental_read(
        self,
        stream: str,
        build: Callable[[tuple[str, ...]], str],
        since: datetime,
        skip_ids: frozenset[str],
    ) -> AsyncIterator[Page]:
        """One query ordered by ``SystemModstamp``; each batch's last stamp is its watermark."""
        totals: list[int] = []
        async for raws, _nxt in self._query(
            stream, build, endpoint=f"GET query {SOBJECTS[stream]}", totals=totals
        ):
            fresh: list[dict[str, Any]] = []
            newest: datetime | None = None
            for raw in raws:
                stamp = modified_at(raw)
                if stamp is not None:
                    newest = stamp if newest is None or stamp > newest else newest
                    if stamp == since and str(raw.get("Id")) in skip_ids:
                        continue
                fresh.append(raw)
            if fresh:
                yield Page(
                    stream=stream,
                    records=map_records(stream, fresh, self.options),
                    watermark=newest,
                    total=totals[0] if totals else None,
                )

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """getDeleted inside its window; ``queryAll`` on ``IsDeleted`` for anything older."""
        sobject = self._sobject(stream)
        if stream == "users":
            return  # users are deactivated (IsActive), never deleted
        now = datetime.now(UTC)
        if since is not None and since > now - timedelta(days=GET_DELETED_DAYS) + _GET_DELETED_MARGIN:
            try:
                page = await self._get_deleted(stream, sobject, since, now)
            except FatalAPIError as exc:
                if exc.error_code != "INVALID_REPLICATION_DATE":
                    raise
            else:
                yield page
                return
        where = [soql.condition("IsDeleted", "=", True)]
        if since is not None:
            where.append(soql.condition(MODSTAMP, ">=", since))
        query = soql.select(sobject, ("Id", MODSTAMP), where=where)
        async for raws, _nxt in self.client.query_pages(
            query, resource="queryAll", endpoint=f"GET queryAll {sobject}"
        ):
            ids = [str(r["Id"]) for r in raws if r.get("Id")]
            yield Page(stream=stream, deleted_ids=ids)

    async def _get_deleted(self, stream: str, sobject: str, since: datetime, now: datetime) -> Page:
        # getDeleted ignores seconds: round the end up to the next minute, or a record deleted
        # earlier in this minute would fall outside the window (the start rounds down by itself).
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        data = await self.client.get(
            f"sobjects/{soql.name(sobject)}/deleted/",
            {"start": _iso(since), "end": _iso(end)},
            endpoint=f"GET sobjects/{sobject}/deleted",
        )
        found = data.get("deletedRecords") if isinstance(data, dict) else None
        ids: list[str] = []
        newest: datetime | None = None
        for item in found if isinstance(found, list) else []:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            ids.append(str(item["id"]))
            at = parse_datetime(item.get("deletedDate"))
            if at is not None and (newest is None or at > newest):
                newest = at
        return Page(stream=stream, deleted_ids=ids, watermark=newest)

    # ---- fields -------------------------------------------------------------------------------

    def _full_name(self, spec: FieldSpec) -> str:
        return f"{FIELD_OBJECTS[spec.object]}.{custom_field(self.settings.field_prefix, spec.name)}"

    async def _existing_fields(self, table: str) -> set[str]:
        """Developer names (without ``__c``) of the custom fields on ``table``, from the Tooling API."""
        query = soql.select(
            "CustomField", ("Id", "DeveloperName"), where=[soql.condition("TableEnumOrId", "=", table)]
        )
        names: set[str] = set()
        async for records, _nxt in self.client.query_pages(
            query, resource="tooling/query", endpoint="GET tooling/query CustomField"
        ):
            names.update(str(r.get("DeveloperName")).lower() for r in records)
        return names

    @staticmethod
    def _metadata(spec: FieldSpec) -> dict[str, Any]:
        meta: dict[str, Any] = {"label": spec.label[:40], "description": spec.description[:1000]}
        if spec.type == "number":
            meta.update(type="Number", precision=18, scale=2)
        elif spec.type == "string":
            meta.update(type="Text", length=255)
        elif spec.type == "text":
            meta.update(type="LongTextArea", length=32768, visibleLines=5)
        elif spec.type == "datetime":
            meta.update(type="DateTime")
        else:
            meta.update(
                type="Picklist",
                valueSet={
                    "valueSetDefinition": {
                        "value": [{"fullName": o, "label": label} for o, label in _option_pairs(spec)]
                    }
                },
            )
        return meta

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the missing custom fields with the Tooling API; returns the full names created."""
        by_table: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_table.setdefault(FIELD_OBJECTS[spec.object], []).append(spec)
        created: list[str] = []
        for table, wanted in by_table.items():
            existing = await self._existing_fields(table)
            for spec in wanted:
                full = self._full_name(spec)
                developer = full.split(".", 1)[1].removesuffix("__c").lower()
                if developer in existing:
                    continue
                try:
                    await self.client.request(
                        "POST",
                        "tooling/sobjects/CustomField",
                        json={"FullName": full, "Metadata": self._metadata(spec)},
                        idempotent=True,  # a second create answers DUPLICATE_DEVELOPER_NAME
                        endpoint="POST tooling/sobjects/CustomField",
                    )
                except FatalAPIError as exc:
                    if exc.error_code != "DUPLICATE_DEVELOPER_NAME":
                        raise
                    continue
                created.append(full)
        self._missing.clear()  # fields found missing before may exist now
        return created

    # ---- writing ------------------------------------------------------------------------------

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
            out.append(WriteResult(ref=ref, ok=False, error=message, retriable=retriable))
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
                if exc.error_code == "INVALID_FIELD" and key_field.lower() in exc.message.lower():
                    return {}  # no key field yet, so no task of ours either
                raise
        return found

    # ---- check --------------------------------------------------------------------------------

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        from crm_upsell_salesforce.discover import describe

        return await describe(self, sample_size=sample_size, catalogue=catalogue)

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            limits = await self.client.get("limits", endpoint="GET limits")
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        detail = f"Salesforce accepted the {self.settings.auth} credentials"
        if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
            detail += (
                f"; {daily['Remaining']} of {daily['Max']} daily API calls left, a run uses at most "
                f"{self.settings.daily_api_share:.0%} of them"
            )
        checks.append(CheckResult(item="credentials", ok=True, detail=detail))
        for stream, sobject in SOBJECTS.items():

            def probe(fields: tuple[str, ...], sobject: str = sobject) -> str:
                return soql.select(sobject, fields, limit=1)

            try:
                async for _batch in self._query(stream, probe, endpoint=f"GET query {sobject} check"):
                    break
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"read {sobject}", ok=False, detail=exc.one_line()))
                continue
            mapped = {api.lower(): api for _, api in self.options.account_fields}
            absent = [mapped[f] for f in self._missing.get(stream, set()) if f in mapped]
            if absent:
                checks.append(
                    CheckResult(
                        item=f"read {sobject}",
                        ok=False,
                        detail=f"the mapped fields {', '.join(sorted(absent))} do not exist or are hidden "
                        "from the integration user (field-level security); they read as empty",
                    )
                )
            else:
                checks.append(CheckResult(item=f"read {sobject}", ok=True))
        wanted: dict[str, list[str]] = {
            "Account": [custom_field(self.settings.field_prefix, f.name) for f in ACCOUNT_FIELDS],
            "Activity": [self.options.task_key_field],
        }
        for table, names in wanted.items():
            item = f"fields on {table}"
            try:
                existing = await self._existing_fields(table)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            missing = [n for n in names if n.removesuffix("__c").lower() not in existing]
            checks.append(fields_check(item, names, missing, "the 'Customize Application' permission"))
        return checks


class SalesforcePlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "salesforce"
    title = "Salesforce"
    settings_model: type[BaseModel] = SalesforceSettings
    connector_class = SalesforceConnector
    sandbox_module = "crm_upsell_salesforce.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        """The sandbox through the client-credentials flow (its login host is the sandbox itself)."""
        return {
            "login_url": base_url,
            "auth": "client_credentials",
            "client_id": options.client_id,
            "client_secret": f"env:{SANDBOX_SECRET_ENV}",
            "product_extra_fields": ["Tier__c"],
            "activity_direction_field": "Direction__c",
            "meeting_outcome_field": "Outcome__c",
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_SECRET_ENV: options.client_secret}


__all__ = ["STREAMS", "SalesforceConnector", "SalesforcePlugin"]


def _option_pairs(spec: FieldSpec) -> list[tuple[str, str]]:
    """(API value, label) per picklist value: the display labels where the spec has them."""
    labels = spec.option_labels if len(spec.option_labels) == len(spec.options) else spec.options
    return list(zip(spec.options, labels, strict=True))
