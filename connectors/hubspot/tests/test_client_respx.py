"""The HubSpot HTTP layer against mocked responses: limits, retries, quota, token refresh, error bodies."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import date
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from crm_upsell_hubspot.connector import HubSpotConnector
from crm_upsell_hubspot.settings import HubSpotSettings

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.errors import AuthError, FatalAPIError, QuotaError, RetriableAPIError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.models import FieldUpdate, TaskDraft
from crm_upsell_connector.secrets import SecretResolver

BASE = "https://api.hubapi.com"
TOKEN = "pat-na1-0123456789-SECRET-TOKEN"
CLIENT_SECRET = "client-secret-abcdef-SECRET"
REFRESH = "refresh-token-abcdef-SECRET"
FAST = HttpSettings(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=4)
OWNERS = f"{BASE}/crm/v3/owners"
STAMP = "2026-10-01T00:00:00.000Z"


def private_app() -> HubSpotConnector:
    settings = HubSpotSettings(auth="private_app", token="env:HS_TOKEN")
    return HubSpotConnector(settings, SecretResolver({"HS_TOKEN": TOKEN}), ConnectorContext("t", http=FAST))


def oauth() -> HubSpotConnector:
    settings = HubSpotSettings(
        auth="oauth", client_id="cid", client_secret="env:HS_SECRET", refresh_token="env:HS_REFRESH"
    )
    secrets = SecretResolver({"HS_SECRET": CLIENT_SECRET, "HS_REFRESH": REFRESH})
    return HubSpotConnector(settings, secrets, ConnectorContext("t", http=FAST))


@pytest.fixture
async def connector() -> AsyncIterator[HubSpotConnector]:
    conn = private_app()
    yield conn
    await conn.close()


def owners_page() -> dict[str, object]:
    return {"results": [{"id": "1", "email": "a@example.com", "updatedAt": STAMP}]}


def error(status: int, category: str, message: str, **extra: object) -> httpx.Response:
    body = {"status": "error", "message": message, "correlationId": "c0ffee", "category": category, **extra}
    return httpx.Response(status, json=body)


@respx.mock
async def test_rate_limit_headers_are_learnt(connector: HubSpotConnector) -> None:
    respx.get(OWNERS).respond(
        200,
        json=owners_page(),
        headers={
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "99",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
    )
    pages = [p async for p in connector.read("owners", None)]
    assert [r.id for r in pages[0].records] == ["1"]
    assert connector.client.limiter.max_requests == 100
    assert connector.client.limiter.interval_s == 10.0
    assert respx.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


@respx.mock
async def test_429_waits_as_told_and_continues(connector: HubSpotConnector) -> None:
    limited = httpx.Response(
        429,
        json={"status": "error", "message": "ten secondly", "policyName": "TEN_SECONDLY_ROLLING"},
        headers={"Retry-After": "0.3"},
    )
    route = respx.get(OWNERS).mock(side_effect=[limited, httpx.Response(200, json=owners_page())])
    started = time.monotonic()
    pages = [p async for p in connector.read("owners", None)]
    assert time.monotonic() - started >= 0.3
    assert pages[0].records
    assert route.call_count == 2
    assert connector.stats.rate_limited == 1
    assert connector.stats.retries == 1


@respx.mock
async def test_5xx_is_retried(connector: HubSpotConnector) -> None:
    route = respx.get(OWNERS).mock(
        side_effect=[
            error(502, "BAD_GATEWAY", "oops"),
            error(503, "UNAVAILABLE", "busy"),
            httpx.Response(200, json=owners_page()),
        ]
    )
    pages = [p async for p in connector.read("owners", None)]
    assert pages[0].records
    assert route.call_count == 3


@respx.mock
async def test_5xx_that_persists_is_a_retriable_error(connector: HubSpotConnector) -> None:
    respx.get(OWNERS).mock(return_value=error(500, "INTERNAL_ERROR", "down"))
    with pytest.raises(RetriableAPIError) as caught:
        [p async for p in connector.read("owners", None)]
    assert caught.value.error_code == "INTERNAL_ERROR"


@respx.mock
async def test_daily_limit_stops_with_quota_error(connector: HubSpotConnector) -> None:
    route = respx.get(OWNERS).respond(
        429, json={"status": "error", "message": "You have reached your daily limit.", "policyName": "DAILY"}
    )
    with pytest.raises(QuotaError) as caught:
        [p async for p in connector.read("owners", None)]
    assert route.call_count == 1  # not retried
    assert "daily API limit" in caught.value.message
    assert "checkpoints" in caught.value.message


@respx.mock
async def test_oauth_token_refreshed_on_401_and_replayed_once() -> None:
    tokens = iter(["access-token-1-xxxxxx", "access-token-2-xxxxxx"])

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["refresh_token"]
        assert form["client_id"] == ["cid"]
        assert form["client_secret"] == [CLIENT_SECRET]
        assert form["refresh_token"] == [REFRESH]
        return httpx.Response(
            200, json={"access_token": next(tokens), "expires_in": 1800, "token_type": "bearer"}
        )

    def owners(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer access-token-2-xxxxxx":
            return httpx.Response(200, json=owners_page())
        return error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired")

    token_route = respx.post(f"{BASE}/oauth/v1/token").mock(side_effect=token_endpoint)
    api_route = respx.get(OWNERS).mock(side_effect=owners)
    conn = oauth()
    try:
        pages = [p async for p in conn.read("owners", None)]
    finally:
        await conn.close()
    assert pages[0].records
    assert token_route.call_count == 2
    assert api_route.call_count == 2
    assert conn.token_refreshes == 2
    assert conn.stats.by_endpoint["POST /oauth/v1/token"] == 2


@respx.mock
async def test_401_after_refresh_is_an_auth_error_without_secrets() -> None:
    respx.post(f"{BASE}/oauth/v1/token").respond(
        200, json={"access_token": "access-token-zzzzzz", "expires_in": 1800}
    )
    respx.get(OWNERS).mock(return_value=error(401, "INVALID_AUTHENTICATION", "bad token access-token-zzzzzz"))
    conn = oauth()
    try:
        with pytest.raises(AuthError) as caught:
            [p async for p in conn.read("owners", None)]
    finally:
        await conn.close()
    text = caught.value.one_line()
    assert "access-token-zzzzzz" not in text
    assert CLIENT_SECRET not in text
    assert REFRESH not in text


@respx.mock
async def test_refused_refresh_token_is_an_auth_error_without_secrets() -> None:
    respx.post(f"{BASE}/oauth/v1/token").respond(
        400, json={"status": "BAD_REFRESH_TOKEN", "message": f"missing or unknown refresh token {REFRESH}"}
    )
    conn = oauth()
    try:
        with pytest.raises(AuthError) as caught:
            [p async for p in conn.read("owners", None)]
    finally:
        await conn.close()
    assert REFRESH not in caught.value.one_line()


@respx.mock
async def test_missing_scopes_names_the_scopes(connector: HubSpotConnector) -> None:
    respx.get(f"{BASE}/crm/v3/objects/companies").mock(
        return_value=error(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": ["crm.objects.companies.read"]},
                }
            ],
        )
    )
    with pytest.raises(AuthError) as caught:
        [p async for p in connector.read("companies", None)]
    assert "crm.objects.companies.read" in caught.value.one_line()


@respx.mock
async def test_bad_request_is_fatal_with_category_and_no_secret(connector: HubSpotConnector) -> None:
    route = respx.get(f"{BASE}/crm/v3/objects/deals").mock(
        return_value=error(400, "VALIDATION_ERROR", f"Property values were not valid (token {TOKEN})")
    )
    with pytest.raises(FatalAPIError) as caught:
        [p async for p in connector.read("deals", None)]
    assert route.call_count == 1
    assert caught.value.error_code == "VALIDATION_ERROR"
    assert TOKEN not in caught.value.one_line()
    assert TOKEN not in str(caught.value.response)
    assert "c0ffee" in caught.value.one_line()


@respx.mock
async def test_full_read_asks_only_for_used_properties_and_pages_by_after(
    connector: HubSpotConnector,
) -> None:
    pages = [
        {
            "results": [
                {"id": "1", "properties": {"name": "A", "hs_lastmodifieddate": STAMP}, "updatedAt": STAMP}
            ],
            "paging": {"next": {"after": "abc"}},
        },
        {"results": [{"id": "2", "properties": {"name": "B"}, "updatedAt": "2026-10-02T00:00:00Z"}]},
    ]
    route = respx.get(f"{BASE}/crm/v3/objects/companies").mock(
        side_effect=[httpx.Response(200, json=p) for p in pages]
    )
    got = [p async for p in connector.read("companies", None)]
    assert [p.resume for p in got] == ["abc", None]
    assert got[0].watermark is None
    assert got[1].watermark is not None
    assert got[1].watermark.isoformat().startswith("2026-10-02")
    first, second = (c.request.url.params for c in route.calls)
    assert "after" not in first
    assert second["after"] == "abc"
    assert "name" in first["properties"].split(",")
    assert first["limit"] == "100"


@respx.mock
async def test_batch_update_partial_failure_and_bisect_on_400(connector: HubSpotConnector) -> None:
    calls: list[list[str]] = []

    def update(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        calls.append(ids)
        if "bad" in ids:
            return error(400, "VALIDATION_ERROR", "Property values were not valid")
        results = [{"id": i, "properties": {}} for i in ids if i != "gone"]
        errors = (
            [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "not found",
                    "context": {"ids": ["gone"]},
                }
            ]
            if "gone" in ids
            else []
        )
        return httpx.Response(
            207 if errors else 200, json={"status": "COMPLETE", "results": results, "errors": errors}
        )

    respx.post(f"{BASE}/crm/v3/objects/companies/batch/update").mock(side_effect=update)
    updates = [FieldUpdate(account_id=i, values={"segment": "x"}) for i in ("1", "bad", "gone", "4")]
    results = {r.ref: r for r in await connector.update_accounts(updates)}
    assert results["1"].ok
    assert results["4"].ok
    assert not results["bad"].ok
    assert not results["bad"].retriable
    assert "VALIDATION_ERROR" in (results["bad"].error or "")
    assert not results["gone"].ok
    assert "not found" in (results["gone"].error or "")
    assert results["gone"].gone  # the store drops it; not a failure
    assert calls[0] == ["1", "bad", "gone", "4"]


@respx.mock
async def test_task_create_is_not_retried_after_a_server_error(connector: HubSpotConnector) -> None:
    route = respx.post(f"{BASE}/crm/v3/objects/tasks/batch/create").mock(
        return_value=error(502, "BAD_GATEWAY", "x")
    )
    draft = TaskDraft(key="k1", account_id="5", owner_id=None, subject="s", body="b", due=date(2026, 1, 2))
    (result,) = await connector.create_tasks([draft])
    assert route.call_count == 1
    assert not result.ok
    assert result.retriable
    assert "may or may not" in (result.error or "")
