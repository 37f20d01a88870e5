"""The HubSpot connector: reads every stream, sets up the product's properties, writes fields and tasks.

Full reads use the list endpoints (100 records a call, associations inline). Incremental reads use
search, keyed on the modification stamp rather than on search's ``after`` offset: every query starts
again at the last stamp read (``GTE``), so no query ever pages past search's 10,000-result cap and a
record modified mid-read (which jumps to the end of the sort order) can never push another one out
of view. More than one page of records sharing one millisecond is read by ``hs_object_id`` inside
that millisecond. Search carries no associations: one v4 batch association read per page adds them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from crm_upsell_connector.batching import chunked, unique_batches
from crm_upsell_connector.connector import CallStats, Connector, ConnectorContext, PluginBase, fields_check
from crm_upsell_connector.errors import ConfigError, ConnectorError, FatalAPIError, RetriableAPIError
from crm_upsell_connector.fields import ACCOUNT_FIELDS
from crm_upsell_connector.models import (
    CheckResult,
    FieldSpec,
    FieldUpdate,
    Page,
    Stream,
    TaskDraft,
    WriteResult,
)
from crm_upsell_hubspot.auth import HubSpotOAuth, build_auth
from crm_upsell_hubspot.client import (
    BATCH_LIMIT,
    LIST_LIMIT,
    SEARCH_LIMIT,
    HubSpotClient,
    context_values,
    error_messages,
    results_of,
)
from crm_upsell_hubspot.mapping import (
    company_update_input,
    map_objects,
    merged_away,
    modified_at,
    parse_datetime,
    task_create_input,
)
from crm_upsell_hubspot.properties import MappingOptions, modified_property, properties_for
from crm_upsell_hubspot.property_setup import PropertySetup
from crm_upsell_hubspot.settings import HubSpotSettings

if TYPE_CHECKING:
    from crm_upsell_connector.sandbox.server import SandboxOptions
    from crm_upsell_connector.secrets import SecretResolver

# The owners API pages up to 500 at a time (objects: 100).
OWNERS_LIMIT = 500
log = logging.getLogger(__name__)

#: connector stream (HubSpot object type) -> canonical stream, in the order to sync.
STREAMS: dict[str, Stream] = {
    "owners": Stream.OWNERS,
    "products": Stream.PRODUCTS,
    "companies": Stream.ACCOUNTS,
    "contacts": Stream.CONTACTS,
    "deals": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "calls": Stream.ACTIVITIES,
    "meetings": Stream.ACTIVITIES,
    "emails": Stream.ACTIVITIES,
    "notes": Stream.ACTIVITIES,
    "tasks": Stream.ACTIVITIES,
}
#: the association each stream's records need (the account, or the deal of a line item).
ASSOCIATION: dict[str, str] = {
    "contacts": "companies",
    "deals": "companies",
    "line_items": "deals",
    "calls": "companies",
    "meetings": "companies",
    "emails": "companies",
    "notes": "companies",
    "tasks": "companies",
}
LINK_CACHE_SIZE = 20_000
SANDBOX_TOKEN_ENV = "CRM_UPSELL_SANDBOX_HUBSPOT_TOKEN"  # noqa: S105 - a variable name, not a secret
_NOT_RETRIABLE = frozenset(
    {"VALIDATION_ERROR", "OBJECT_NOT_FOUND", "PROPERTY_DOESNT_EXIST", "INVALID_PARAMS"}
)
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(value: datetime) -> int:
    return (value.astimezone(UTC) - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


class HubSpotConnector(Connector):
    """One HubSpot account, through a private app token or OAuth."""

    streams: Mapping[str, Stream] = STREAMS

    def __init__(
        self,
        settings: HubSpotSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.options = MappingOptions(prefix=settings.property_prefix, account_fields=context.account_fields)
        # (object type, id) -> (modification stamp, association links) of records read lately.
        self._links: OrderedDict[tuple[str, str], tuple[datetime, list[Any]]] = OrderedDict()
        auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /oauth/v1/token"),
        )
        self.client = HubSpotClient(
            settings.base_url,
            auth=auth,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            search_rate_per_s=settings.search_rate_per_s,
            daily_share=settings.daily_api_share,
            http=context.http,
            transport=transport,
        )

        self.setup = PropertySetup(self.client, settings)

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def token_refreshes(self) -> int:
        auth = self.client.auth
        return auth.refreshes if isinstance(auth, HubSpotOAuth) else 0

    async def close(self) -> None:
        await self.client.close()

    async def home_currency(self) -> str | None:
        """The account's company currency, from ``GET /account-info/v3/details`` (``companyCurrency``,
        https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details).
        Line items in it get their amount as home amount (HubSpot gives deals theirs)."""
        details = await self.client.get("/account-info/v3/details")
        code = str(details.get("companyCurrency") or "").strip().upper() or None
        self.options = dataclasses.replace(self.options, home_currency=code)
        return code

    # ---- reading ------------------------------------------------------------------------------

    def _object_type(self, stream: str) -> str:
        if stream not in STREAMS:
            raise ConfigError(f"HubSpot has no stream {stream!r}; streams are {', '.join(STREAMS)}")
        return stream

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        object_type = self._object_type(stream)
        if object_type == "owners":  # no search for owners, and there are few: always list them
            pages = self._list_read(stream, "/crm/v3/owners", {"limit": OWNERS_LIMIT}, resume)
        elif since is None:
            params: dict[str, Any] = {
                "limit": LIST_LIMIT,
                "properties": ",".join(properties_for(object_type, self.options)),
            }
            if object_type in ASSOCIATION:
                params["associations"] = ASSOCIATION[object_type]
            pages = self._list_read(stream, f"/crm/v3/objects/{object_type}", params, resume)
        else:
            pages = self._search_read(stream, since, skip_ids)
        async for page in pages:
            yield page

    async def _list_read(
        self, stream: str, path: str, params: dict[str, Any], resume: str | None
    ) -> AsyncIterator[Page]:
        """A full read by list pages; the last page carries the newest stamp seen as watermark."""
        newest: datetime | None = None
        async for results, after in self.client.list_pages(path, params, after=resume):
            for raw in results:
                stamp = modified_at(stream, raw)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                self._remember(stream, raw)
            records = map_objects(stream, results, self.options)
            yield Page(
                stream=stream,
                records=records,
                deleted_ids=merged_away(records),
                resume=after,
                watermark=None if after else newest,
            )

    def _search_body(self, object_type: str, filters: list[dict[str, Any]], sort: str) -> dict[str, Any]:
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties_for(object_type, self.options)),
            "limit": self.settings.search_page_size,
        }

    def _stamp_ms(self, object_type: str, raw: Mapping[str, Any], default: int) -> int:
        stamp = modified_at(object_type, raw)
        return to_ms(stamp) if stamp is not None else default

    async def _search_read(
        self, stream: str, since: datetime, skip_ids: frozenset[str]
    ) -> AsyncIterator[Page]:
        """Keyset paging on the modification stamp: each query starts again at the last stamp read."""
        object_type = stream
        mod = modified_property(object_type)
        lo = to_ms(since)
        # Ids already read whose stamp is ``lo``: GTE returns them again, they need no second look.
        seen_at_lo: set[str] = set(skip_ids)
        while True:
            body = self._search_body(
                object_type, [{"propertyName": mod, "operator": "GTE", "value": str(lo)}], mod
            )
            results = results_of(await self.client.search(object_type, body))
            if not results:
                return
            stamps = [self._stamp_ms(object_type, r, lo) for r in results]
            full = len(results) >= self.settings.search_page_size
            if full and stamps[0] == stamps[-1]:
                # A whole page at one instant: read that millisecond by id, then move past it.
                async for page in self._read_instant(
                    stream, stamps[-1], seen_at_lo if stamps[0] == lo else set()
                ):
                    yield page
                lo, seen_at_lo = stamps[-1] + 1, set()
                continue
            fresh = [
                raw
                for raw, stamp in zip(results, stamps, strict=True)
                if not (stamp == lo and str(raw.get("id")) in seen_at_lo)
            ]
            if fresh:
                yield await self._search_page(stream, fresh, from_ms(stamps[-1]))
            if not full:
                return
            last = stamps[-1]
            seen_at_lo = {str(r.get("id")) for r, s in zip(results, stamps, strict=True) if s == last}
            lo = last

    async def _read_instant(self, stream: str, stamp: int, skip: set[str]) -> AsyncIterator[Page]:
        """Every record modified in one millisecond, by ``hs_object_id`` (for > one page of them)."""
        object_type = stream
        mod = modified_property(object_type)
        last_id: str | None = None
        while True:
            filters = [
                {"propertyName": mod, "operator": "GTE", "value": str(stamp)},
                {"propertyName": mod, "operator": "LT", "value": str(stamp + 1)},
            ]
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})
            body = self._search_body(object_type, filters, "hs_object_id")
            results = results_of(await self.client.search(object_type, body))
            if not results:
                return
            fresh = [r for r in results if str(r.get("id")) not in skip]
            if fresh:
                yield await self._search_page(stream, fresh, from_ms(stamp))
            if len(results) < self.settings.search_page_size:
                return
            last_id = str(results[-1].get("id"))

    async def _search_page(self, stream: str, results: list[dict[str, Any]], last_stamp: datetime) -> Page:
        await self._attach_associations(stream, results)
        records = map_objects(stream, results, self.options)
        return Page(stream=stream, records=records, deleted_ids=merged_away(records), watermark=last_stamp)

    def _remember(self, object_type: str, raw: Mapping[str, Any]) -> None:
        """Keep a record's association under its modification stamp (see ``_attach_associations``)."""
        to_type = ASSOCIATION.get(object_type)
        stamp = modified_at(object_type, raw)
        if to_type is None or stamp is None or raw.get("id") in (None, ""):
            return
        assoc = raw.get("associations")
        block = assoc.get(to_type) if isinstance(assoc, dict) else None
        links = block.get("results") if isinstance(block, dict) else None
        key = (object_type, str(raw["id"]))
        self._links[key] = (stamp, list(links) if isinstance(links, list) else [])
        self._links.move_to_end(key)
        while len(self._links) > LINK_CACHE_SIZE:
            self._links.popitem(last=False)

    async def _attach_associations(self, object_type: str, results: list[dict[str, Any]]) -> None:
        """One v4 batch association read for a page of search results (which carry none).

        Records this connector has already read at the same modification stamp (the boundary that
        every incremental read re-reads) reuse the association seen then: a search by modification
        stamp could not have noticed a change that did not move the stamp either.
        """
        to_type = ASSOCIATION.get(object_type)
        if to_type is None:
            return
        wanted: list[str] = []
        for raw in results:
            if raw.get("id") in (None, ""):
                continue
            known = self._links.get((object_type, str(raw["id"])))
            if known is not None and known[0] == modified_at(object_type, raw):
                if known[1]:
                    raw["associations"] = {to_type: {"results": known[1]}}
            else:
                wanted.append(str(raw["id"]))
        if wanted:
            found = await self._read_associations(object_type, to_type, wanted)
            for raw in results:
                links = found.get(str(raw.get("id")))
                if links:
                    raw["associations"] = {to_type: {"results": links}}
        for raw in results:
            self._remember(object_type, raw)

    async def _read_associations(
        self, object_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[dict[str, str]]]:
        reply = await self.client.post(
            f"/crm/v4/associations/{object_type}/{to_type}/batch/read",
            {"inputs": [{"id": i} for i in dict.fromkeys(ids)]},
            idempotent=True,
            endpoint=f"POST /crm/v4/associations/{object_type}/{to_type}/batch/read",
        )
        found: dict[str, list[dict[str, str]]] = {}
        for item in results_of(reply):
            source = item.get("from")
            source_id = str(source.get("id")) if isinstance(source, dict) else None
            targets = item.get("to")
            if not source_id or not isinstance(targets, list):
                continue
            for target in targets:
                if not isinstance(target, dict) or target.get("toObjectId") in (None, ""):
                    continue
                labels = [
                    str(t.get("label") or "")
                    for t in target.get("associationTypes") or []
                    if isinstance(t, dict)
                ]
                kind = "primary" if any("primary" in label.lower() for label in labels) else "unlabeled"
                found.setdefault(source_id, []).append({"id": str(target["toObjectId"]), "type": kind})
        return found

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """Archived records by list pages (archived records are not searchable)."""
        object_type = self._object_type(stream)
        if object_type == "owners":
            path, params = "/crm/v3/owners", {"limit": OWNERS_LIMIT, "archived": "true"}
        else:
            path = f"/crm/v3/objects/{object_type}"
            params = {"limit": LIST_LIMIT, "archived": "true", "properties": "hs_object_id"}
        newest: datetime | None = None
        async for results, after in self.client.list_pages(path, params, endpoint=f"GET {path} archived"):
            deleted: list[str] = []
            for raw in results:
                if raw.get("id") in (None, ""):
                    continue
                at = parse_datetime(raw.get("archivedAt")) or parse_datetime(raw.get("updatedAt"))
                if at is not None and (newest is None or at > newest):
                    newest = at
                if since is None or at is None or at >= since:
                    deleted.append(str(raw["id"]))
            yield Page(stream=stream, deleted_ids=deleted, watermark=None if after else newest)

    # ---- fields -------------------------------------------------------------------------------

    async def _property_names(self, object_type: str) -> set[str]:
        return set(await self.setup.definitions(object_type))

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the group and the missing properties, convert earlier text ones into dropdowns;
        returns the HubSpot names created or converted (see ``property_setup``)."""
        return await self.setup.ensure(specs)

    # ---- writing ------------------------------------------------------------------------------

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

    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        key_property = self.options.task_key_property
        found: dict[str, str] = {}
        for chunk in chunked(list(dict.fromkeys(keys)), 100):
            body = self._search_body(
                "tasks",
                [{"propertyName": key_property, "operator": "IN", "values": chunk}],
                "hs_object_id",
            )
            body["properties"] = [key_property]
            async for results, _total in self.client.search_pages("tasks", body):
                for item in results:
                    props = item.get("properties")
                    key = props.get(key_property) if isinstance(props, dict) else None
                    if key in chunk and item.get("id") is not None:
                        found.setdefault(str(key), str(item["id"]))
        return found

    # ---- check --------------------------------------------------------------------------------

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            await self.client.get("/crm/v3/owners", {"limit": 1})
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        checks.append(
            CheckResult(
                item="credentials", ok=True, detail=f"HubSpot accepted the {self.settings.auth} credentials"
            )
        )
        for object_type in STREAMS:
            if object_type == "owners":
                checks.append(CheckResult(item="read owners", ok=True))
                continue
            try:
                await self.client.get(f"/crm/v3/objects/{object_type}", {"limit": 1})
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"read {object_type}", ok=False, detail=exc.one_line()))
            else:
                checks.append(CheckResult(item=f"read {object_type}", ok=True))
        try:
            code = await self.home_currency()
        except ConnectorError as exc:
            checks.append(CheckResult(item="company currency", ok=False, detail=exc.one_line()))
        else:
            detail = (
                f"amounts are compared in {code}" if code else "HubSpot did not say; set [tasks] currency"
            )
            checks.append(CheckResult(item="company currency", ok=code is not None, detail=detail))
        wanted = {
            "companies": [self.settings.property_prefix + f.name for f in ACCOUNT_FIELDS],
            "tasks": [self.options.task_key_property],
        }
        for object_type, names in wanted.items():
            item = f"fields on {object_type}"
            try:
                existing = await self._property_names(object_type)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            missing = [n for n in names if n not in existing]
            checks.append(fields_check(item, names, missing, "the crm.schemas.*.write scopes"))
        return checks


class HubSpotPlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "hubspot"
    title = "HubSpot"
    settings_model: type[BaseModel] = HubSpotSettings
    connector_class = HubSpotConnector
    sandbox_module = "crm_upsell_hubspot.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "auth": "private_app",
            "token": f"env:{SANDBOX_TOKEN_ENV}",
            "rate_limit_max": options.rate_limit_max,
            "rate_limit_interval_s": options.rate_limit_interval_ms / 1000.0,
            "search_page_size": min(SEARCH_LIMIT, options.search_cap),
            "search_rate_per_s": max(
                1, int(options.search_rate_limit_max * 1000 / options.search_rate_limit_interval_ms)
            ),
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_TOKEN_ENV: str(options.token)}
