"""The Zoho CRM connector: reads every stream, sets up the product's fields, writes fields and tasks.

**How it reads.** The records API (``GET /crm/v8/{module}``, 200 records a call, ``fields`` limited to
what the product uses), sorted by ``Modified_Time`` ascending, with ``If-Modified-Since``. It is not
paged by offset: every call starts again at the modification second of the last record read (keyset
paging), and records already read in that second are dropped by id, so a record edited mid-read
(which jumps to the end of the order) can never push another one out of view, and no read depends on
a page token that expires. Only when more than a page of records shares one second does a read page
inside that second, by ``page`` and, past 2,000 records, by ``page_token``. A nothing-changed read is
one call (Zoho answers 204). Users come from ``GET /users?type=AllUsers``; deletions from
``GET /{module}/deleted?type=all`` with ``If-Modified-Since``.

**Why not COQL.** A COQL call returns up to 2,000 rows for 3 credits (records API: 200 rows for 1
credit), so COQL would spend about a third of the credits on a first full sync. It is not used for
reads because it returns lookups without names, does not join related lists, and pages by offset
(shifted by edits made mid-read). COQL serves ``find_tasks``, where one call looks up 50 task keys.

**Line items** (what an account owns) come from each won or open deal's Products related list (see
:mod:`crm_upsell_zoho.owned`), or from a custom subform when ``owned_products`` names one. The
``deals`` and ``line_items`` streams ask for the same Deals fields, so when both are read from the
same position (a full sync reads them side by side) one response serves both (:class:`SharedPages`).
**Notes** are read newest first without ``If-Modified-Since`` (see :mod:`crm_upsell_zoho.notes`).
**Writes** always send ``trigger`` (``[]`` unless configured): no workflow, approval or blueprint runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from crm_upsell_connector.batching import unique_batches
from crm_upsell_connector.connector import CallStats, Connector, ConnectorContext, PluginBase, fields_check
from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.errors import (
    ConfigError,
    ConnectorError,
    FatalAPIError,
    QuotaError,
    RetriableAPIError,
)
from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.models import (
    CheckResult,
    FieldSpec,
    FieldUpdate,
    Page,
    Record,
    Stream,
    TaskDraft,
    WriteResult,
)
from crm_upsell_zoho.auth import build_auth
from crm_upsell_zoho.campaigns import read_campaign_members
from crm_upsell_zoho.client import (
    PAGE_LIMIT,
    PAGE_PARAM_MAX_RECORDS,
    WRITE_LIMIT,
    PermissionDenied,
    UnknownFieldError,
    ZohoClient,
    data_of,
    info_of,
    zoho_error_fields,
)
from crm_upsell_zoho.coql import MAX_IN_VALUES, coql_credits, select_in
from crm_upsell_zoho.fields_setup import (
    FIELDS_PER_CALL,
    FieldState,
    check_labels,
    create_fields,
    judge_fields,
    wrong_type_advice,
)
from crm_upsell_zoho.mapping import (
    MODULES,
    MappingOptions,
    account_update_body,
    chunks,
    fields_for,
    map_records,
    modified_at,
    parse_datetime,
    task_body,
    zoho_datetime,
)
from crm_upsell_zoho.notes import NOTES_PERMISSION, read_notes
from crm_upsell_zoho.owned import DEAL_PRODUCTS_SOURCE, deal_product_lines
from crm_upsell_zoho.settings import ZohoSettings

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
    "deals": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "tasks": Stream.ACTIVITIES,
    "calls": Stream.ACTIVITIES,
    "events": Stream.ACTIVITIES,
    "notes": Stream.ACTIVITIES,
    "campaign_members": Stream.CAMPAIGN_MEMBERS,
}
SANDBOX_SECRET_ENV = "CRM_UPSELL_SANDBOX_ZOHO_CLIENT_SECRET"  # noqa: S105 - a variable name
SANDBOX_REFRESH_ENV = "CRM_UPSELL_SANDBOX_ZOHO_REFRESH_TOKEN"
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
# If-Modified-Since has second granularity and Zoho does not say whether it is inclusive: ask from
# one second earlier and drop what is older than wanted, or already read, by stamp and id.
_IMS_SLACK = timedelta(seconds=1)
_SHARED_TTL_S = 120.0
# Modules whose fields differ between orgs: Accounts and Tasks (ours, after setup).
_META_MODULES = frozenset({"Accounts", "Tasks"})
# Fields only some orgs have, asked for anyway: Zoho refuses the read naming one, and the read goes on
# without it (one call, once per connector). Currency and Exchange_Rate exist in multi-currency orgs
# only ("Multi Currency Support").
_OPTIONAL_FIELDS = frozenset({"Currency", "Exchange_Rate", "Email_Opt_Out"})
_CREATE_ATTEMPTS = 3


def ims_moment(moment: datetime) -> datetime:
    """The instant an ``If-Modified-Since`` for "modified at or after ``moment``" names."""
    return (moment - _IMS_SLACK).replace(microsecond=0)


def if_modified_since(moment: datetime) -> str:
    """The header value for "modified at or after ``moment``" (one second of slack, floored)."""
    return zoho_datetime(ims_moment(moment))


@dataclass
class _Shared:
    future: asyncio.Future[dict[str, Any]]
    readers: set[str]
    at: float = field(default_factory=time.monotonic)


class SharedPages:
    """Pages of one module fetched for one stream and handed, once, to a sibling stream asking the
    very same request (the deals and line_items streams both read Deals).

    Entries live at most ``ttl_s`` and at most ``cap`` are kept: a sibling that falls behind simply
    fetches for itself.
    """

    def __init__(self, cap: int = 24, ttl_s: float = _SHARED_TTL_S) -> None:
        self.cap = cap
        self.ttl_s = ttl_s
        self.served = 0
        self._entries: OrderedDict[tuple[Any, ...], _Shared] = OrderedDict()

    def _expire(self) -> None:
        horizon = time.monotonic() - self.ttl_s
        for key in [k for k, e in self._entries.items() if e.at < horizon and e.future.done()]:
            del self._entries[key]
        while len(self._entries) > self.cap:
            self._entries.popitem(last=False)

    async def get(
        self, key: tuple[Any, ...], reader: str, fetch: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        self._expire()
        entry = self._entries.get(key)
        if entry is not None and reader not in entry.readers:
            entry.readers.add(reader)
            try:
                shared = await asyncio.shield(entry.future)
            except Exception as exc:  # the sibling's call failed: try for ourselves
                log.debug("a shared %s page failed for the sibling stream (%s); fetching again", key[0], exc)
            else:
                self.served += 1
                self._entries.pop(key, None)
                return shared
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._entries[key] = _Shared(future, {reader})
        self._expire()
        try:
            body = await fetch()
        except BaseException as exc:
            self._entries.pop(key, None)
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        future.set_result(body)
        return body


class ZohoConnector(Connector):
    """One Zoho CRM organisation, through OAuth (refresh token)."""

    streams: Mapping[str, Stream] = STREAMS
    #: records per insert / update call (the outbox sends batches of this size).
    write_batch_size: int = WRITE_LIMIT

    def __init__(
        self,
        settings: ZohoSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /oauth/v2/token"),
        )
        self.client = ZohoClient(
            self.auth,
            api_version=settings.api_version,
            max_concurrency=settings.max_concurrency,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            credits_per_run=settings.credits_per_run,
            http=context.http,
            transport=transport,
        )
        self.shared = SharedPages()
        #: canonical name -> api_name of the product's fields (derived; corrected by setup/metadata).
        self._product_fields = {f.name: settings.api_name(f.label) for f in ACCOUNT_FIELDS}
        self._task_key_field = settings.api_name(TASK_KEY_FIELD.label)
        #: module -> (lower-cased api_name -> api_name) of its fields, once read (Accounts, Tasks).
        self._meta: dict[str, dict[str, str]] = {}
        #: module -> fields Zoho said the organisation does not have (e.g. no Deal_Products subform).
        self._missing: dict[str, set[str]] = {}
        self._meta_lock = asyncio.Lock()

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def credits_used(self) -> int:
        return self.client.credits.used

    @property
    def token_refreshes(self) -> int:
        return self.auth.refreshes

    async def close(self) -> None:
        await self.client.close()

    def _options(self) -> MappingOptions:
        names: dict[str, str] = {}
        meta = self._meta.get("Accounts", {})
        for name in self.context.account_fields:
            names[name] = meta.get(name.lower(), name)
        return MappingOptions(
            product_fields=dict(self._product_fields),
            task_key_field=self._task_key_field,
            account_fields=self.context.account_fields,
            account_field_names=names,
            deal_subforms=self.settings.deal_subforms,
            product_value_aliases={
                spec.name: dict(zip(spec.option_labels, spec.options, strict=False))
                for spec in ACCOUNT_FIELDS
                if spec.type == "enumeration" and spec.option_labels
            },
        )

    # ---- field metadata -----------------------------------------------------------------------

    async def _fields_of(self, module: str) -> list[dict[str, Any]]:
        _, body = await self.client.request(
            "GET", "settings/fields", kind="fields", params={"module": module}
        )
        return data_of(body, "fields")

    def _learn(self, module: str, fields: list[dict[str, Any]]) -> None:
        """Take the real api_names of our fields (matched by label) and of the account fields."""
        by_label = {str(f.get("field_label") or "").strip().lower(): str(f.get("api_name")) for f in fields}
        self._meta[module] = {str(f.get("api_name")).lower(): str(f.get("api_name")) for f in fields}
        if module == "Accounts":
            for spec in ACCOUNT_FIELDS:
                found = by_label.get(self.settings.label_for(spec.label).lower())
                if found:
                    self._product_fields[spec.name] = found
        elif module == "Tasks":
            found = by_label.get(self.settings.label_for(TASK_KEY_FIELD.label).lower())
            if found:
                self._task_key_field = found

    async def _ensure_meta(self, module: str) -> None:
        """A module's field list, once per connector (for Accounts and Tasks, which carry fields that
        exist only after setup or only in some orgs): configured names such as ``nps_score`` are
        matched to Zoho's spelling (``NPS_Score``) without regard to case, and fields the org does
        not have are not asked for (Zoho refuses the whole read otherwise)."""
        if module in self._meta:
            return
        async with self._meta_lock:
            if module not in self._meta:
                self._learn(module, await self._fields_of(module))

    def _fields_param(self, stream: str, options: MappingOptions) -> str:
        module = MODULES[stream]
        names = fields_for(stream, options)
        meta = self._meta.get(module)
        if meta is not None:
            names = tuple(n for n in names if n.startswith("$") or n.lower() in meta)
        missing = self._missing.get(module, set())
        return ",".join(n for n in names if n not in missing)

    # ---- reading ------------------------------------------------------------------------------

    def _check_stream(self, stream: str) -> None:
        if stream not in STREAMS:
            raise ConfigError(f"Zoho CRM has no stream {stream!r}; streams are {', '.join(STREAMS)}")

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        self._check_stream(stream)
        if stream == "users":
            pages = self._read_users(since, skip_ids)
        elif stream == "notes":
            pages = read_notes(self.client, since, skip_ids, self._options())
        elif stream == "campaign_members":
            ims = if_modified_since(since) if since is not None else None
            pages = read_campaign_members(self.client, since, ims, skip_ids)
        else:
            if MODULES[stream] in _META_MODULES:
                await self._ensure_meta(MODULES[stream])
            start = since
            if since is None and resume:
                start = parse_datetime(resume)
            pages = self._read_module(stream, start, since, skip_ids)
        async for page in pages:
            yield page

    async def _get_page(self, stream: str, params: dict[str, Any], header: str | None) -> dict[str, Any]:
        module = MODULES[stream]
        headers = {"If-Modified-Since": header} if header else None

        async def fetch() -> dict[str, Any]:
            _, body = await self.client.request(
                "GET", module, kind="records", params=params, headers=headers, endpoint=f"GET {module}"
            )
            return body

        if module != "Deals":
            return await fetch()
        key = (module, header, tuple(sorted(params.items())))
        return await self.shared.get(key, stream, fetch)

    async def _read_module(
        self,
        stream: str,
        start: datetime | None,
        since: datetime | None,
        skip_ids: frozenset[str],
    ) -> AsyncIterator[Page]:
        """Keyset paging on ``Modified_Time`` (see the module docstring)."""
        options = self._options()
        base = {
            "fields": self._fields_param(stream, options),
            "per_page": PAGE_LIMIT,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
        }
        header_at = ims_moment(start) if start is not None else None
        header = zoho_datetime(header_at) if header_at is not None else None
        # Zoho shows stamps to the second: a record modified after ``since`` in the same second shows
        # a stamp before it. Only what is older than since's whole second is surely old.
        floor = since.replace(microsecond=0) if since is not None else None
        # id -> stamp of the records read whose stamps the current request asks for again.
        # (Line items from a deal's Products related list are ``<deal id>:<product id>``: the deal's.)
        seen: dict[str, datetime] = (
            {(i.partition(":")[0] if stream == "line_items" else i): since for i in skip_ids}
            if since is not None
            else {}
        )
        page_no, token = 1, None
        while True:
            params = dict(base)
            if token is not None:
                params["page_token"] = token
            else:
                params["page"] = page_no
            try:
                body = await self._get_page(stream, params, header)
            except UnknownFieldError as exc:
                if exc.api_name == "Modified_Time" or exc.api_name not in str(base["fields"]).split(","):
                    raise
                log.log(
                    logging.INFO if exc.api_name in _OPTIONAL_FIELDS else logging.WARNING,
                    "Zoho %s has no field %s: reading without it",
                    MODULES[stream],
                    exc.api_name,
                )
                self._missing.setdefault(MODULES[stream], set()).add(exc.api_name)
                base["fields"] = self._fields_param(stream, options)
                continue
            rows = data_of(body)
            info = info_of(body)
            fresh: list[dict[str, Any]] = []
            last: datetime | None = None
            for raw in rows:
                stamp = modified_at(raw)
                ident = str(raw.get("id") or "")
                if stamp is not None:
                    last = stamp if last is None or stamp > last else last
                if stamp is not None and floor is not None and stamp < floor:
                    continue
                if stamp is not None and ident and seen.get(ident) == stamp:
                    continue
                if stamp is not None and ident:
                    seen[ident] = stamp
                fresh.append(raw)
            more = bool(info.get("more_records")) and bool(rows)
            if fresh:
                yield Page(
                    stream=stream,
                    records=await self._map_page(stream, fresh, options, since),
                    # A full read resumes at the last second read (a few records are read twice).
                    resume=zoho_datetime(last) if more and last is not None else None,
                    watermark=last,
                )
            if not more:
                return
            next_at = ims_moment(last) if last is not None else header_at
            if next_at is not None and (header_at is None or next_at > header_at):
                # Start again at the last second read: nothing edited meanwhile can shift a page.
                header_at, header, page_no, token = next_at, zoho_datetime(next_at), 1, None
                seen = {i: s for i, s in seen.items() if s >= next_at}
                continue
            # A whole page inside one second: page through that second.
            if token is None and page_no * PAGE_LIMIT < PAGE_PARAM_MAX_RECORDS:
                page_no += 1
                continue
            next_token = info.get("next_page_token")
            if not next_token:
                raise FatalAPIError(
                    f"Zoho reports more {MODULES[stream]} records past {PAGE_PARAM_MAX_RECORDS} "
                    "but gave no next_page_token"
                )
            token = str(next_token)

    async def _map_page(
        self, stream: str, raws: list[dict[str, Any]], options: MappingOptions, since: datetime | None
    ) -> list[Record]:
        """Canonical records of one page; line items also come from each deal's Products related list
        (see :mod:`crm_upsell_zoho.owned`), for deals stamped at or after ``since`` only: the deals
        of ``since``'s second that are shown again (Zoho's stamps have whole seconds) were read by the
        run that set the cursor, and their related lists cost a call each."""
        records = map_records(stream, raws, options)
        if stream == "line_items" and DEAL_PRODUCTS_SOURCE in self.settings.owned_products:
            changed = [
                raw for raw in raws if since is None or ((at := modified_at(raw)) is not None and at >= since)
            ]
            seen = {r.id for r in records}
            records.extend(r for r in await deal_product_lines(self.client, changed) if r.id not in seen)
        return records

    async def _read_users(self, since: datetime | None, skip_ids: frozenset[str]) -> AsyncIterator[Page]:
        """Users are few: every call lists them (``If-Modified-Since`` makes an unchanged list a 204)."""
        options = self._options()
        page_no = 1
        headers = {"If-Modified-Since": if_modified_since(since)} if since is not None else None
        while True:
            _, body = await self.client.request(
                "GET",
                "users",
                kind="users",
                params={"type": "AllUsers", "page": page_no, "per_page": PAGE_LIMIT},
                headers=headers,
                endpoint="GET users",
            )
            users = data_of(body, "users")
            floor = since.replace(microsecond=0) if since is not None else None
            records = [
                r
                for r in map_records("users", users, options)
                if floor is None
                or (r.updated_at >= floor and not (r.updated_at == since and r.id in skip_ids))
            ]
            more = bool(info_of(body).get("more_records")) and bool(users)
            newest = max((r.updated_at for r in records), default=None)
            if records:
                yield Page(stream="users", records=records, watermark=newest)
            if not more:
                return
            page_no += 1

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """Deleted records (recycle bin and permanent) from ``GET /{module}/deleted``.

        Users are never deleted (they are deactivated, which a read shows). A line item disappears
        with its deal: the features join line items to deals, so they drop out with it.
        """
        self._check_stream(stream)
        if stream in ("users", "line_items", "campaign_members"):
            return  # campaign members: every full read reconciles them (campaigns.py)
        module = MODULES[stream]
        headers = {"If-Modified-Since": if_modified_since(since)} if since is not None else None
        page_no = 1
        while True:
            _, body = await self.client.request(
                "GET",
                f"{module}/deleted",
                kind="deleted",
                params={"type": "all", "page": page_no, "per_page": PAGE_LIMIT},
                headers=headers,
                endpoint=f"GET {module}/deleted",
            )
            rows = data_of(body)
            deleted: list[str] = []
            newest: datetime | None = None
            for raw in rows:
                if raw.get("id") in (None, ""):
                    continue
                at = parse_datetime(raw.get("deleted_time"))
                if at is not None and (newest is None or at > newest):
                    newest = at
                if since is None or at is None or at >= since:
                    deleted.append(str(raw["id"]))
            more = bool(info_of(body).get("more_records")) and bool(rows)
            yield Page(stream=stream, deleted_ids=deleted, watermark=None if more else newest)
            if not more:
                return
            page_no += 1

    # ---- fields -------------------------------------------------------------------------------

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the product's fields that are missing, at most five per ``POST /settings/fields``
        (see :mod:`crm_upsell_zoho.fields_setup`); returns the api_names created.

        Field by field: one field Zoho refuses does not stop the others, a field that failed for a
        passing reason is tried again, and a run cut short creates only what is still missing next
        time. A field that exists with the wrong type (a segment an earlier version made as text) is
        not touched: :class:`ConfigError` says what the administrator does.
        """
        by_module: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_module.setdefault("Accounts" if spec.object == "account" else "Tasks", []).append(spec)
        created: list[str] = []
        failures: list[str] = []
        advice: list[str] = []
        for module, wanted in by_module.items():
            check_labels(self.settings, wanted)
            existing = await self._fields_of(module)
            self._learn(module, existing)
            state = self._judge(wanted, existing)
            advice.extend(
                wrong_type_advice(module, self.settings.label_for(spec.label), has, spec)
                for spec, _, has in state.wrong_type
            )
            pending = list(state.missing)
            for _ in range(_CREATE_ATTEMPTS):
                if not pending:
                    break
                retry: list[FieldSpec] = []
                for chunk in chunks(pending, FIELDS_PER_CALL):
                    done, again, failed = await create_fields(self.client, self.settings, module, chunk)
                    created.extend(done)
                    retry.extend(again)
                    failures.extend(failed)
                pending = retry
            failures.extend(
                f"{self.settings.label_for(s.label)}: Zoho kept failing to create it" for s in pending
            )
            if state.missing:
                self._learn(module, await self._fields_of(module))
        if failures:
            raise FatalAPIError(
                "Zoho did not create every field ("
                + "; ".join(failures)
                + (f"); also: {'; '.join(advice)}" if advice else ")")
                + f"; created {len(created)}; run 'crm-upsell setup' again to create the rest"
            )
        if advice:
            raise ConfigError("; ".join(advice))
        return created

    def _judge(self, specs: Sequence[FieldSpec], existing: Sequence[Mapping[str, Any]]) -> FieldState:
        return judge_fields(
            specs,
            existing,
            {s.name: self.settings.label_for(s.label) for s in specs},
            {s.name: self.settings.api_name(s.label) for s in specs},
        )

    # ---- writing ------------------------------------------------------------------------------

    @staticmethod
    def _failed(refs: Sequence[str], exc: ConnectorError) -> list[WriteResult]:
        retriable = isinstance(exc, RetriableAPIError | QuotaError)
        message = exc.one_line()
        if isinstance(exc, RetriableAPIError) and not exc.not_sent:
            message += " (it may or may not have been applied)"
        return [WriteResult(ref=r, ok=False, error=message, retriable=retriable) for r in refs]

    async def home_currency(self) -> str | None:
        """The org's home currency: the one ``GET /org/currencies`` marks ``is_base`` ("Currencies",
        https://www.zoho.com/crm/developer/docs/api/v8/get-currencies.html); an org without
        multi-currency answers that with an error, and then ``GET /org``'s ``currency`` ("US Dollar -
        USD", "Get Organization Data") names it. None when neither says."""
        try:
            _, body = await self.client.request(
                "GET", "org/currencies", kind="records", endpoint="GET org/currencies"
            )
        except FatalAPIError:
            body = {}
        for row in data_of(body, "currencies"):
            code = row.get("iso_code")
            if row.get("is_base") is True and isinstance(code, str) and len(code.strip()) == 3:
                return code.strip().upper()
        _, org = await self.client.request("GET", "org", kind="records", endpoint="GET org")
        for row in data_of(org, "org"):
            found = re.search(r"\b([A-Z]{3})\)?\s*$", str(row.get("currency") or "").strip())
            if found:
                return found.group(1)
        return None

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

    # ---- check --------------------------------------------------------------------------------

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        from crm_upsell_zoho.discover import describe

        return await describe(self, sample_size=sample_size, catalogue=catalogue)

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            await self.client.request(
                "GET", "users", kind="users", params={"type": "CurrentUser"}, endpoint="GET users"
            )
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        checks.append(
            CheckResult(
                item="credentials",
                ok=True,
                detail=f"Zoho accepted the refresh token ({self.auth.api_domain or 'api'})",
            )
        )
        for module in dict.fromkeys(MODULES.values()):
            try:
                await self.client.request(
                    "GET",
                    module,
                    kind="records",
                    params={"fields": "Modified_Time", "per_page": 1},
                    endpoint=f"GET {module}",
                )
            except PermissionDenied as exc:
                detail = exc.one_line()
                if module == "Notes":
                    detail = f"the integration user may not list all notes: notes are skipped; give it {NOTES_PERMISSION}"
                checks.append(CheckResult(item=f"read {module}", ok=False, detail=detail))
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"read {module}", ok=False, detail=exc.one_line()))
            else:
                checks.append(CheckResult(item=f"read {module}", ok=True))
        wanted = {"Accounts": list(ACCOUNT_FIELDS), "Tasks": [TASK_KEY_FIELD]}
        for module, specs in wanted.items():
            item = f"fields on {module}"
            try:
                fields = await self._fields_of(module)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            self._learn(module, fields)
            state = self._judge(specs, fields)
            labels = [self.settings.label_for(s.label) for s in specs]
            missing = [self.settings.label_for(s.label) for s in state.missing]
            if state.wrong_type:
                advice = "; ".join(
                    wrong_type_advice(module, self.settings.label_for(s.label), has, s)
                    for s, _, has in state.wrong_type
                )
                if missing:
                    advice = f"missing {', '.join(missing)} (run 'crm-upsell setup'); {advice}"
                checks.append(CheckResult(item=item, ok=False, detail=advice))
            else:
                checks.append(fields_check(item, labels, missing, "the ZohoCRM.settings.fields.ALL scope"))
        return checks


class ZohoPlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "zoho"
    title = "Zoho CRM"
    settings_model: type[BaseModel] = ZohoSettings
    connector_class = ZohoConnector
    sandbox_module = "crm_upsell_zoho.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        return {
            "data_centre": "com",
            "accounts_url": base_url,
            "client_id": options.client_id,
            "client_secret": f"env:{SANDBOX_SECRET_ENV}",
            "refresh_token": f"env:{SANDBOX_REFRESH_ENV}",
            "rate_limit_max": options.rate_limit_max,
            "rate_limit_interval_s": options.rate_limit_interval_ms / 1000.0,
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_SECRET_ENV: options.client_secret, SANDBOX_REFRESH_ENV: options.refresh_token}
