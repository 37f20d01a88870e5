"""The Zoho HTTP layer against mocked responses: data centres, credits, limits, token refresh, errors."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from crm_upsell_zoho.connector import ZohoConnector
from crm_upsell_zoho.settings import DATA_CENTRES, ZohoSettings
from pydantic import ValidationError

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.errors import AuthError, FatalAPIError, QuotaError, RetriableAPIError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.models import Deal, FieldUpdate, TaskDraft
from crm_upsell_connector.secrets import SecretResolver

ACCOUNTS_EU = "https://accounts.zoho.eu"
API_EU = "https://www.zohoapis.eu"
CLIENT_SECRET = "client-secret-abcdef-SECRET"
REFRESH = "1000.refresh-token-abcdef-SECRET"
FAST = HttpSettings(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=4)
STAMP = "2026-10-01T00:00:00+00:00"
USERS = f"{API_EU}/crm/v8/users"


def connector(**settings: Any) -> ZohoConnector:
    values: dict[str, Any] = {
        "data_centre": "eu",
        "client_id": "1000.CLIENTID",
        "client_secret": "env:ZC_SECRET",
        "refresh_token": "env:ZC_REFRESH",
        **settings,
    }
    secrets = SecretResolver({"ZC_SECRET": CLIENT_SECRET, "ZC_REFRESH": REFRESH})
    return ZohoConnector(ZohoSettings.model_validate(values), secrets, ConnectorContext("t", http=FAST))


@pytest.fixture
async def conn() -> AsyncIterator[ZohoConnector]:
    c = connector()
    yield c
    await c.close()


def token_ok(token: str = "1000.access-token-one", api_domain: str = API_EU) -> httpx.Response:
    return httpx.Response(
        200,
        json={"access_token": token, "api_domain": api_domain, "token_type": "Bearer", "expires_in": 3600},
    )


def users_page() -> dict[str, Any]:
    return {
        "users": [
            {
                "id": "1",
                "full_name": "Ann",
                "email": "a@example.com",
                "status": "active",
                "Modified_Time": STAMP,
            }
        ],
        "info": {"more_records": False},
    }


def mock_counts(count: Any = 1) -> respx.Route:
    """Every module's "Get Record Count" (a full read asks it first, for progress)."""
    return respx.get(url__regex=rf"^{re.escape(API_EU)}/crm/v8/\w+/actions/count$").mock(
        return_value=httpx.Response(200, json={"count": count})
    )


def zoho_error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"code": code, "details": details, "message": message, "status": "error"}
    )


def mock_account_fields() -> respx.Route:
    """The Accounts field list the connector reads once before its first Accounts read."""
    fields = [
        {"api_name": n, "field_label": n.replace("_", " ")}
        for n in ("Account_Name", "Owner", "Modified_Time")
    ]
    return respx.get(f"{API_EU}/crm/v8/settings/fields").respond(200, json={"fields": fields})


def account_row(i: int, stamp: str = STAMP) -> dict[str, Any]:
    return {"id": str(i), "Account_Name": f"A{i}", "Modified_Time": stamp}


@respx.mock
async def test_data_centre_picks_the_accounts_server_and_api_domain_comes_from_the_token(
    conn: ZohoConnector,
) -> None:
    token = respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    users = respx.get(USERS).respond(200, json=users_page())
    pages = [p async for p in conn.read("users", None)]
    assert [r.id for r in pages[0].records] == ["1"]
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["client_id"] == ["1000.CLIENTID"]
    assert users.calls.last.request.headers["Authorization"] == "Zoho-oauthtoken 1000.access-token-one"
    assert users.calls.last.request.url.params["type"] == "AllUsers"


@pytest.mark.parametrize("dc", DATA_CENTRES)
def test_every_data_centre_has_its_accounts_server(dc: str) -> None:
    settings = ZohoSettings.model_validate(
        {"data_centre": dc, "client_id": "c", "client_secret": "env:S", "refresh_token": "env:R"}
    )
    host = "accounts.zohocloud.ca" if dc == "ca" else f"accounts.zoho.{dc}"
    assert settings.token_url == f"https://{host}/oauth/v2/token"


def test_settings_refuse_plain_http_off_this_machine_and_pasted_secrets() -> None:
    base = {"client_id": "c", "client_secret": "env:S", "refresh_token": "env:R"}
    with pytest.raises(ValidationError, match="https"):
        ZohoSettings.model_validate({**base, "accounts_url": "http://proxy.example.com"})
    assert ZohoSettings.model_validate({**base, "accounts_url": "http://127.0.0.1:9"}).token_url == (
        "http://127.0.0.1:9/oauth/v2/token"
    )
    with pytest.raises(ValidationError, match="reference"):
        ZohoSettings.model_validate({**base, "refresh_token": "1000.abcdef.123456"})
    with pytest.raises(ValidationError):
        ZohoSettings.model_validate({**base, "data_centre": "de"})


@respx.mock
async def test_an_api_domain_over_plain_http_is_refused(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(
        return_value=token_ok(api_domain="http://evil.example.com")
    )
    with pytest.raises(AuthError, match="https"):
        [p async for p in conn.read("users", None)]


@respx.mock
async def test_credits_are_counted_and_the_cap_stops_the_run_before_the_call() -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_counts()
    pages = [
        {"data": [account_row(1, "2026-10-01T00:00:00+00:00")], "info": {"more_records": True}},
        {"data": [account_row(2, "2026-10-02T00:00:00+00:00")], "info": {"more_records": True}},
        {"data": [account_row(3, "2026-10-03T00:00:00+00:00")], "info": {"more_records": False}},
    ]
    meta = mock_account_fields()
    route = respx.get(f"{API_EU}/crm/v8/Accounts").mock(
        side_effect=[httpx.Response(200, json=p) for p in pages]
    )
    capped = connector(credits_per_run=4)
    try:
        got: list[str] = []

        async def read_all() -> None:
            async for page in capped.read("accounts", None):
                got.extend(r.id for r in page.records)

        with pytest.raises(QuotaError) as caught:
            await read_all()
    finally:
        await capped.close()
    assert got == ["1", "2"]  # pages before the cap are delivered (and committed by the core)
    assert route.call_count == 2  # the third call was never sent
    assert meta.call_count == 1
    assert capped.credits_used == 4  # the field list, the record count and two pages
    assert "4 of its 4" in caught.value.message and "checkpoints" in caught.value.message


@respx.mock
async def test_full_read_restarts_at_the_last_second_read_and_drops_what_it_has(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_counts()
    base = datetime(2026, 10, 1, tzinfo=UTC)
    first = [account_row(i, (base + timedelta(seconds=i)).isoformat()) for i in range(1, 201)]
    # Zoho answers from one second before the last stamp: the last two rows come back again.
    second = [*first[-2:], account_row(500, "2026-10-01T00:05:00+00:00")]
    mock_account_fields()
    route = respx.get(f"{API_EU}/crm/v8/Accounts").mock(
        side_effect=[
            httpx.Response(200, json={"data": first, "info": {"more_records": True}}),
            httpx.Response(200, json={"data": second, "info": {"more_records": False}}),
        ]
    )
    pages = [p async for p in conn.read("accounts", None)]
    ids = [r.id for p in pages for r in p.records]
    assert len(ids) == len(set(ids)) == 201
    one, two = (c.request for c in route.calls)
    assert "If-Modified-Since" not in one.headers
    assert two.headers["If-Modified-Since"] == "2026-10-01T00:03:19+00:00"
    assert two.url.params["page"] == "1"
    assert two.url.params["sort_by"] == "Modified_Time" and two.url.params["sort_order"] == "asc"
    assert pages[-1].watermark == datetime(2026, 10, 1, 0, 5, tzinfo=UTC)


@respx.mock
async def test_a_full_read_is_sized_by_the_record_count_and_goes_on_without_it(
    conn: ZohoConnector, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_account_fields()
    page = {"data": [account_row(1, STAMP), account_row(2, STAMP)], "info": {"more_records": False}}
    records = respx.get(f"{API_EU}/crm/v8/Accounts").mock(return_value=httpx.Response(200, json=page))
    count = respx.get(f"{API_EU}/crm/v8/Accounts/actions/count").mock(
        side_effect=[
            httpx.Response(200, json={"count": "2"}),  # a digit string is read as the number
            zoho_error(403, "NO_PERMISSION", "permission denied"),
        ]
    )
    assert [p.total for p in [p async for p in conn.read("accounts", None)]] == [2]
    with caplog.at_level(logging.DEBUG, logger="crm_upsell_zoho.counts"):
        pages = [p async for p in conn.read("accounts", None)]
    assert [p.total for p in pages] == [None] and len(pages[0].records) == 2  # the read goes on
    logged = [r for r in caplog.records if r.name == "crm_upsell_zoho.counts"]
    assert len(logged) == 1 and logged[0].levelno == logging.DEBUG
    assert "Accounts: no record count" in logged[0].getMessage()
    # An incremental read asks no count.
    [p async for p in conn.read("accounts", datetime(2026, 9, 1, tzinfo=UTC))]
    assert count.call_count == 2 and records.call_count == 3


@respx.mock
async def test_incremental_read_with_nothing_changed_is_one_call(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    route = respx.get(f"{API_EU}/crm/v8/Contacts").respond(204)
    since = datetime(2026, 10, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    assert [r for p in [p async for p in conn.read("contacts", since)] for r in p.records] == []
    assert route.call_count == 1
    assert route.calls.last.request.headers["If-Modified-Since"] == "2026-10-01T11:59:59+00:00"


@respx.mock
async def test_429_and_limit_exceeded_back_off_and_continue(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    route = respx.get(USERS).mock(
        side_effect=[
            zoho_error(429, "TOO_MANY_REQUESTS", "concurrency limit exceeded"),
            httpx.Response(
                429,
                json={"code": "LIMIT_EXCEEDED", "details": {}, "message": "credits", "status": "error"},
                headers={"Retry-After": "0.2"},
            ),
            httpx.Response(200, json=users_page()),
        ]
    )
    started = time.monotonic()
    pages = [p async for p in conn.read("users", None)]
    assert time.monotonic() - started >= 0.2
    assert pages[0].records
    assert route.call_count == 3
    assert conn.stats.rate_limited == 2
    assert conn.stats.retries == 2


@respx.mock
async def test_credits_still_exhausted_after_the_retries_stop_the_run_as_a_quota(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    route = respx.get(USERS).mock(
        return_value=httpx.Response(
            429,
            json={"code": "LIMIT_EXCEEDED", "details": {}, "message": "credits", "status": "error"},
            headers={"Retry-After": "0"},
        )
    )
    with pytest.raises(QuotaError, match="API credits for the rolling 24 hours are used up") as info:
        [p async for p in conn.read("users", None)]
    assert route.call_count > 1, "retried before giving up"
    assert info.value.exit_code == 5 and "next run" in info.value.one_line()


@respx.mock
async def test_invalid_token_is_refreshed_and_replayed_once() -> None:
    tokens = iter(["1000.access-token-one", "1000.access-token-two"])
    token_route = respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(
        side_effect=lambda r: token_ok(next(tokens))
    )

    def users(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Zoho-oauthtoken 1000.access-token-two":
            return httpx.Response(200, json=users_page())
        return zoho_error(401, "INVALID_TOKEN", "invalid oauth token")

    api_route = respx.get(USERS).mock(side_effect=users)
    c = connector()
    try:
        pages = [p async for p in c.read("users", None)]
    finally:
        await c.close()
    assert pages[0].records
    assert token_route.call_count == 2
    assert api_route.call_count == 2
    assert c.token_refreshes == 2
    assert c.stats.by_endpoint["POST /oauth/v2/token"] == 2
    assert c.credits_used == 1  # the token endpoint is not a CRM API call


@respx.mock
async def test_invalid_token_after_the_replay_is_an_auth_error_without_secrets() -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok("1000.access-token-zzzzzz"))
    route = respx.get(USERS).mock(
        return_value=zoho_error(401, "INVALID_TOKEN", "bad token 1000.access-token-zzzzzz")
    )
    c = connector()
    try:
        with pytest.raises(AuthError) as caught:
            [p async for p in c.read("users", None)]
    finally:
        await c.close()
    assert route.call_count == 2  # replayed once, not more
    text = caught.value.one_line()
    for secret in ("1000.access-token-zzzzzz", CLIENT_SECRET, REFRESH):
        assert secret not in text


@respx.mock
async def test_a_refused_refresh_token_is_an_auth_error_without_secrets(conn: ZohoConnector) -> None:
    # Zoho's accounts server answers bad credentials with HTTP 200 and an error field.
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").respond(200, json={"error": f"invalid_code {REFRESH}"})
    with pytest.raises(AuthError) as caught:
        [p async for p in conn.read("users", None)]
    assert REFRESH not in caught.value.one_line()
    assert CLIENT_SECRET not in caught.value.one_line()
    assert "data_centre" in caught.value.one_line()


@respx.mock
async def test_a_field_the_org_lacks_is_dropped_from_the_read(
    conn: ZohoConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A single-currency org has no Currency on Deals: the read goes on without it, once."""
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_counts()
    deal = {"id": "9", "Deal_Name": "D", "Stage": "Closed Won", "Amount": 10, "Modified_Time": STAMP}

    def deals(request: httpx.Request) -> httpx.Response:
        if "Currency" in request.url.params["fields"].split(","):
            return zoho_error(400, "INVALID_DATA", "invalid data", param_name="fields", api_name="Currency")
        return httpx.Response(200, json={"data": [deal], "info": {"more_records": False}})

    route = respx.get(f"{API_EU}/crm/v8/Deals").mock(side_effect=deals)
    products = respx.get(f"{API_EU}/crm/v8/Deals/9/Products").mock(return_value=httpx.Response(204))
    with caplog.at_level(logging.INFO):
        got = [r for p in [p async for p in conn.read("deals", None)] for r in p.records]
    assert [r.id for r in got] == ["9"]
    assert isinstance(got[0], Deal) and got[0].amount_home == 10  # no rate: already the home currency
    assert "Deals has no field Currency" in caplog.text
    items = [r for p in [p async for p in conn.read("line_items", None)] for r in p.records]
    assert items == []  # the deal's Products related list is empty
    assert route.call_count == 2  # the refused call, then one without the field (shared with line_items)
    assert products.call_count == 1


@respx.mock
async def test_a_400_limit_exceeded_is_a_request_error_not_a_rate_limit(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_counts()
    route = respx.get(f"{API_EU}/crm/v8/Calls").mock(
        return_value=zoho_error(400, "LIMIT_EXCEEDED", "limit exceeded", limit=50, param_name="fields")
    )
    with pytest.raises(FatalAPIError):
        [p async for p in conn.read("calls", None)]
    assert route.call_count == 1
    assert conn.stats.rate_limited == 0


@respx.mock
async def test_error_bodies_keep_their_code_and_lose_secrets(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok("1000.access-token-one"))
    mock_counts()
    route = respx.get(f"{API_EU}/crm/v8/Deals").mock(
        return_value=zoho_error(400, "INVALID_DATA", "invalid data 1000.access-token-one", api_name="Stage")
    )
    with pytest.raises(FatalAPIError) as caught:
        [p async for p in conn.read("deals", None)]
    assert route.call_count == 1
    assert caught.value.error_code == "INVALID_DATA"
    assert "Stage" in caught.value.one_line()
    assert "1000.access-token-one" not in caught.value.one_line()
    assert "1000.access-token-one" not in str(caught.value.response)


@respx.mock
async def test_scope_mismatch_and_5xx(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    mock_counts()
    respx.get(f"{API_EU}/crm/v8/Notes").mock(
        return_value=zoho_error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope")
    )
    with pytest.raises(AuthError, match="scope"):
        [p async for p in conn.read("notes", None)]
    route = respx.get(f"{API_EU}/crm/v8/Calls").mock(return_value=zoho_error(500, "INTERNAL_ERROR", "down"))
    with pytest.raises(RetriableAPIError) as caught:
        [p async for p in conn.read("calls", None)]
    assert caught.value.error_code == "INTERNAL_ERROR"
    assert route.call_count == FAST.max_attempts


@respx.mock
async def test_per_record_results_are_mapped_back_in_order(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    respx.get(f"{API_EU}/crm/v8/settings/fields").respond(200, json={"fields": []})
    sent: list[list[str]] = []

    def update(request: httpx.Request) -> httpx.Response:
        ids = [r["id"] for r in json.loads(request.content)["data"]]
        sent.append(ids)
        results = []
        for i in ids:
            if i == "gone":
                results.append(
                    {
                        "code": "INVALID_DATA",
                        "details": {"api_name": "id"},
                        "message": "the id given seems to be invalid",
                        "status": "error",
                    }
                )
            elif i == "busy":
                results.append(
                    {
                        "code": "INTERNAL_ERROR",
                        "details": {},
                        "message": "Internal Server Error",
                        "status": "error",
                    }
                )
            else:
                results.append(
                    {
                        "code": "SUCCESS",
                        "details": {"id": i},
                        "message": "record updated",
                        "status": "success",
                    }
                )
        ok = sum(r["status"] == "success" for r in results)
        return httpx.Response(200 if ok == len(results) else 400 if ok == 0 else 207, json={"data": results})

    respx.put(f"{API_EU}/crm/v8/Accounts").mock(side_effect=update)
    ids = [str(i) for i in range(150)] + ["gone", "busy"]
    results = await conn.update_accounts([FieldUpdate(account_id=i, values={"segment": "x"}) for i in ids])
    assert [r.ref for r in results] == ids
    assert [len(batch) for batch in sent] == [100, 52]
    assert all(r.ok and r.crm_id == r.ref for r in results[:150])
    gone, busy = results[-2:]
    assert (
        not gone.ok
        and not gone.retriable
        and "INVALID_DATA" in (gone.error or "")
        and "id" in (gone.error or "")
    )
    assert not busy.ok and busy.retriable
    # Every record failing comes back as a 400 with per-record results, still mapped one by one.
    (only,) = await conn.update_accounts([FieldUpdate(account_id="gone", values={"segment": "x"})])
    assert not only.ok and "the id given seems to be invalid" in (only.error or "")


@respx.mock
async def test_task_creation_is_not_resent_after_a_server_error(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    route = respx.post(f"{API_EU}/crm/v8/Tasks").mock(return_value=zoho_error(502, "BAD_GATEWAY", "x"))
    draft = TaskDraft(key="k1", account_id="5", owner_id=None, subject="s", body="b", due=date(2026, 1, 2))
    (result,) = await conn.create_tasks([draft])
    assert route.call_count == 1
    assert not result.ok and result.retriable
    assert "may or may not" in (result.error or "")


@respx.mock
async def test_find_tasks_escapes_hostile_keys_and_prices_coql_by_limit(conn: ZohoConnector) -> None:
    respx.post(f"{ACCOUNTS_EU}/oauth/v2/token").mock(return_value=token_ok())
    hostile = "k' or id is not null --"
    route = respx.post(f"{API_EU}/crm/v8/coql").respond(
        200,
        json={
            "data": [{"id": "77", "Upsell_task_key": hostile}],
            "info": {"count": 1, "more_records": False},
        },
    )
    found = await conn.find_tasks([hostile, "plain"])
    assert found == {hostile: "77"}
    query = json.loads(route.calls.last.request.content)["select_query"]
    assert query == (
        "select id, Upsell_task_key from Tasks where Upsell_task_key in ('k\\' or id is not null --','plain') "
        "limit 0, 200"
    )
    assert conn.credits_used == 1
