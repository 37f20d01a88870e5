"""The Zoho connector's reads: keyset paging over the records API, users, deleted records, and the
pages the deals and line_items streams share (see :mod:`crm_upsell_zoho.connector`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crm_upsell_connector.errors import ConfigError, FatalAPIError
from crm_upsell_connector.models import Page, Record
from crm_upsell_zoho.campaigns import read_campaign_members
from crm_upsell_zoho.client import (
    PAGE_LIMIT,
    PAGE_PARAM_MAX_RECORDS,
    PermissionDenied,
    UnknownFieldError,
    data_of,
    info_of,
)
from crm_upsell_zoho.counts import record_count, with_total
from crm_upsell_zoho.line_items import ORDER_STREAMS, is_cancelled, order_line_ids
from crm_upsell_zoho.mapping import (
    MODULES,
    MappingOptions,
    map_records,
    modified_at,
    parse_datetime,
    zoho_datetime,
)
from crm_upsell_zoho.notes import read_notes
from crm_upsell_zoho.orders import with_line_items
from crm_upsell_zoho.owned import DEAL_PRODUCTS_SOURCE, deal_product_lines

if TYPE_CHECKING:
    pass
from crm_upsell_zoho.base import _META_MODULES, _OPTIONAL_FIELDS, STREAMS, ZohoBase

log = logging.getLogger(__name__)

# If-Modified-Since has second granularity and Zoho does not say whether it is inclusive: ask from
# one second earlier and drop what is older than wanted, or already read, by stamp and id.
_IMS_SLACK = timedelta(seconds=1)


def ims_moment(moment: datetime) -> datetime:
    """The instant an ``If-Modified-Since`` for "modified at or after ``moment``" names."""
    return (moment - _IMS_SLACK).replace(microsecond=0)


def if_modified_since(moment: datetime) -> str:
    """The header value for "modified at or after ``moment``" (one second of slack, floored)."""
    return zoho_datetime(ims_moment(moment))


#: Zoho's answer for a module the org does not have.
INVALID_MODULE = "INVALID_MODULE"


def cancelled_lines(stream: str, raws: list[dict[str, Any]]) -> list[str]:
    """The line ids of the cancelled orders or invoices among ``raws``: they no longer own anything."""
    if stream not in ORDER_STREAMS:
        return []
    subform = ORDER_STREAMS[stream][2]
    return [
        line
        for raw in raws
        if isinstance(raw, dict) and raw.get("id") and is_cancelled(raw)
        for line in order_line_ids(raw, subform)
    ]


class ZohoReads(ZohoBase):
    """Reading every stream."""

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
        if stream in ORDER_STREAMS:
            async for page in self._read_order_lines(stream, since, resume, skip_ids):
                yield page
            return
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
            # A full read from the start is sized by the module's record count (one extra call; not
            # for line_items, whose records are the deals' product lines, not the deals).
            if since is None and not resume and stream != "line_items":
                total = await record_count(self.client, MODULES[stream])
                if total is not None:
                    pages = with_total(pages, total)
        async for page in pages:
            yield page

    async def _read_order_lines(
        self, stream: str, since: datetime | None, resume: str | None, skip_ids: frozenset[str]
    ) -> AsyncIterator[Page]:
        """The product lines of Sales Orders or Invoices, when ``owned_products`` names the source:
        the records API with the line item subform in ``fields`` (200 orders and all their lines a
        call, keyset paging like every module; a record listed without it is read on its own, see
        :mod:`crm_upsell_zoho.orders`). An org whose edition lacks the module answers 400
        ``INVALID_MODULE`` (an error code of the records API in Zoho's v8 OpenAPI description,
        ``zoho/crm-oas`` ``v8.0/record.json``; "Get Records",
        https://www.zoho.com/crm/developer/docs/api/v8/get-records.html): one warning, and the
        source is skipped (``check`` says so too)."""
        source, module, _ = ORDER_STREAMS[stream]
        if source not in self.settings.owned_products:
            return
        start = since if since is not None or not resume else parse_datetime(resume)
        try:
            async for page in self._read_module(stream, start, since, skip_ids):
                yield page
        except FatalAPIError as exc:
            if exc.error_code != INVALID_MODULE:
                raise
            log.warning(
                "Zoho CRM has no %s module in this org (its edition lacks it, or it is hidden): "
                "owned products from %s are skipped; remove %r from owned_products to stop this warning",
                module,
                module.replace("_", " "),
                source,
            )
        except PermissionDenied as exc:
            # A profile without View on the module: 403 NO_PERMISSION, like the notes list.
            log.warning(
                "the %s stream is skipped: the integration user's profile may not view %s (%s); give it "
                "View on %s, or remove %r from owned_products",
                stream,
                module.replace("_", " "),
                exc.one_line(),
                module.replace("_", " "),
                source,
            )

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
            {
                (i.partition(":")[0] if stream == "line_items" or stream in ORDER_STREAMS else i): since
                for i in skip_ids
            }
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
            if fresh and stream in ORDER_STREAMS:
                _, module, subform = ORDER_STREAMS[stream]
                fresh = await with_line_items(self.client, module, subform, str(base["fields"]), fresh)
            if fresh:
                yield Page(
                    stream=stream,
                    records=await self._map_page(stream, fresh, options, since),
                    deleted_ids=cancelled_lines(stream, fresh),
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
        with its deal: the features join line items to deals, so they drop out with it. The lines of a
        deleted sales order or invoice (ids ``<record id>:<row id>``) are removed by that prefix.
        """
        self._check_stream(stream)
        if stream in ("users", "line_items", "campaign_members"):
            return  # campaign members: every full read reconciles them (campaigns.py)
        if stream in ORDER_STREAMS:
            source = ORDER_STREAMS[stream][0]
            if source not in self.settings.owned_products:
                return
            try:
                async for page in self._deleted_pages(stream, since):
                    for record in page.deleted_ids:
                        yield Page(stream=stream, present_ids=[], present_prefix=f"{record}:")
                    yield Page(stream=stream, watermark=page.watermark)
            except PermissionDenied:  # read() has warned already
                pass
            except FatalAPIError as exc:
                if exc.error_code != INVALID_MODULE:  # no such module: read() has warned already
                    raise
            return
        async for page in self._deleted_pages(stream, since):
            yield page

    async def _deleted_pages(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
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
