"""The Salesforce HTTP layer against mocked responses: auth flows, the daily share, errors, secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from crm_upsell_salesforce.connector import SalesforceConnector
from crm_upsell_salesforce.settings import SalesforceSettings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.errors import AuthError, FatalAPIError, QuotaError, RetriableAPIError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.models import FieldUpdate, Page, TaskDraft
from crm_upsell_connector.secrets import SecretResolver

LOGIN = "https://login.salesforce.com"
TOKEN_URL = f"{LOGIN}/services/oauth2/token"
INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v62.0"
QUERY = f"{DATA}/query"
ACCESS = "00D000000000001!ACCESS-TOKEN-SECRET-1"
ACCESS2 = "00D000000000001!ACCESS-TOKEN-SECRET-2"
CLIENT_SECRET = "consumer-secret-abcdef-SECRET"
REFRESH = "refresh-token-abcdef-SECRET"
FAST = HttpSettings(backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=4)
STAMP = "2026-10-01T00:00:00.000+0000"


def connector(**overrides: object) -> SalesforceConnector:
    values: dict[str, object] = {
        "auth": "refresh_token",
        "client_id": "3MVG9-consumer-key",
        "client_secret": "env:SF_SECRET",
        "refresh_token": "env:SF_REFRESH",
        **overrides,
    }
    settings = SalesforceSettings.model_validate(values)
    secrets = SecretResolver({"SF_SECRET": CLIENT_SECRET, "SF_REFRESH": REFRESH})
    return SalesforceConnector(settings, secrets, ConnectorContext("t", ("seats_purchased",), http=FAST))


@pytest.fixture
async def conn() -> AsyncIterator[SalesforceConnector]:
    c = connector()
    yield c
    await c.close()


def token_answer(access: str = ACCESS, instance: str = INSTANCE) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "instance_url": instance,
            "id": f"{LOGIN}/id/00D000000000001/005000000000001",
            "token_type": "Bearer",
            "issued_at": "1700000000000",
            "signature": "sig",
        },
    )


def users(n: int, start: int = 0, *, more: str | None = None, usage: str = "10/15000") -> httpx.Response:
    body: dict[str, object] = {
        "totalSize": n,
        "done": more is None,
        "records": [
            {"attributes": {"type": "User"}, "Id": f"005{i:015d}", "Name": f"u{i}", "SystemModstamp": STAMP}
            for i in range(start, start + n)
        ],
    }
    if more:
        body["nextRecordsUrl"] = more
    return httpx.Response(200, json=body, headers={"Sforce-Limit-Info": f"api-usage={usage}"})


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=[{"message": message, "errorCode": code, "fields": fields or []}])


async def read_all(c: SalesforceConnector, stream: str = "users") -> list[str]:
    return [r.id async for page in c.read(stream, None) for r in page.records]


@respx.mock
async def test_refresh_token_flow_uses_instance_url_and_pages_by_next_records_url(
    conn: SalesforceConnector,
) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=token_answer())
    locator = "/services/data/v62.0/query/01gD0000000001-2000"
    respx.get(QUERY).mock(return_value=users(2000, more=locator))
    respx.get(f"{INSTANCE}{locator}").mock(return_value=users(5, 2000))
    pages = [p async for p in conn.read("users", None)]
    assert [len(p.records) for p in pages] == [2000, 5, 0]
    # Each page resumes after its last Id; the last page lists every live id (reconcile by ids).
    assert pages[0].resume == f"id:{pages[0].records[-1].id}" and pages[2].present_ids is not None
    assert len(pages[2].present_ids) == 2005 and pages[2].present_prefix == "005"
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == [REFRESH]
    assert form["client_secret"] == [CLIENT_SECRET]
    sent = respx.calls[1].request
    assert sent.headers["Authorization"] == f"Bearer {ACCESS}"
    assert (
        "SELECT Id, Name, Email, IsActive, SystemModstamp FROM User ORDER BY Id"
        in parse_qs(sent.url.query.decode())["q"][0]
    )
    assert conn.stats.calls == 3  # the token, then ceil(2005 / 2000) query calls


@respx.mock
async def test_jwt_bearer_flow_signs_the_assertion(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "server.key"
    path.write_bytes(pem)
    token = respx.post("https://test.salesforce.com/services/oauth2/token").mock(return_value=token_answer())
    respx.get(QUERY).mock(return_value=users(1))
    c = connector(
        auth="jwt",
        login_url="https://test.salesforce.com",
        username="integration@acme.example",
        private_key_path=str(path),
        client_secret=None,
        refresh_token=None,
    )
    try:
        assert len(await read_all(c)) == 1
    finally:
        await c.close()
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0], key.public_key(), algorithms=["RS256"], audience="https://test.salesforce.com"
    )
    assert claims["iss"] == "3MVG9-consumer-key" and claims["sub"] == "integration@acme.example"


@respx.mock
async def test_client_credentials_flow_needs_my_domain() -> None:
    with pytest.raises(ValueError, match="My Domain"):
        SalesforceSettings(auth="client_credentials", client_id="x", client_secret="env:S")
    token = respx.post("https://acme.my.salesforce.com/services/oauth2/token").mock(
        return_value=token_answer()
    )
    respx.get(QUERY).mock(return_value=users(1))
    c = connector(auth="client_credentials", login_url="https://acme.my.salesforce.com", refresh_token=None)
    try:
        assert len(await read_all(c)) == 1
    finally:
        await c.close()
    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["3MVG9-consumer-key"],
        "client_secret": [CLIENT_SECRET],
    }


@respx.mock
async def test_an_instance_url_over_plain_http_is_refused(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer(instance="http://evil.example.com"))
    with pytest.raises(AuthError, match="instance_url"):
        await read_all(conn)


@respx.mock
async def test_sforce_limit_info_is_learnt(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(QUERY).mock(return_value=users(1, usage="5000/15000"))
    await read_all(conn)
    budget = conn.client.budget
    assert (budget.used, budget.max) == (5000, 15000)
    assert budget.remaining_at_start == 10001  # our own call is inside "used"
    assert budget.allowance == 2500


@respx.mock
async def test_the_daily_share_stops_the_run_cleanly() -> None:
    c = connector(daily_api_share=0.25)
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    # 11 calls left in the org's day: this run may use floor(0.25 * 11) = 2 of them.
    route = respx.get(QUERY).mock(
        return_value=users(2000, more="/services/data/v62.0/query/01g-2000", usage="14990/15000")
    )
    nxt = respx.get(f"{INSTANCE}/services/data/v62.0/query/01g-2000").mock(
        return_value=users(2000, more="/services/data/v62.0/query/01g-4000", usage="14991/15000")
    )
    third = respx.get(f"{INSTANCE}/services/data/v62.0/query/01g-4000").mock(return_value=users(1))
    pages: list[Page] = []

    async def read() -> None:
        async for page in c.read("users", None):
            pages.append(page)

    try:
        with pytest.raises(QuotaError) as caught:
            await read()
    finally:
        await c.close()
    assert len(pages) == 2 and pages[-1].resume == f"id:{pages[-1].records[-1].id}"
    assert route.call_count == 1 and nxt.call_count == 1 and third.call_count == 0
    message = caught.value.one_line()
    assert "25%" in message and "daily API allowance" in message and "resumes" in message
    assert caught.value.exit_code == 5


@respx.mock
async def test_request_limit_exceeded_is_a_quota_error_not_retried(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    route = respx.get(QUERY).mock(
        return_value=sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    )
    with pytest.raises(QuotaError, match="REQUEST_LIMIT_EXCEEDED"):
        await read_all(conn)
    assert route.call_count == 1


@respx.mock
async def test_concurrent_request_limit_waits_and_retries(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    busy = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    busy.headers["Retry-After"] = "0"
    route = respx.get(QUERY).mock(side_effect=[busy, users(1)])
    conn.client.api.settings = FAST
    # The wait for concurrent limits is two seconds; patch it down for the test.
    import crm_upsell_salesforce.client as client_module

    old = client_module._CONCURRENT_WAIT_S
    client_module._CONCURRENT_WAIT_S = 0.01
    try:
        assert len(await read_all(conn)) == 1
    finally:
        client_module._CONCURRENT_WAIT_S = old
    assert route.call_count == 2


@respx.mock
async def test_invalid_session_refreshes_and_replays_once(conn: SalesforceConnector) -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[token_answer(ACCESS), token_answer(ACCESS2)])
    expired = sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
    route = respx.get(QUERY).mock(side_effect=[expired, users(3)])
    assert len(await read_all(conn)) == 3
    assert token.call_count == 2 and route.call_count == 2
    assert route.calls[1].request.headers["Authorization"] == f"Bearer {ACCESS2}"
    assert conn.token_refreshes == 2


@respx.mock
async def test_a_session_refused_twice_is_an_auth_error_without_secrets(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(side_effect=[token_answer(ACCESS), token_answer(ACCESS2)])
    expired = sf_error(401, "INVALID_SESSION_ID", f"Session {ACCESS2} expired or invalid")
    route = respx.get(QUERY).mock(return_value=expired)
    with pytest.raises(AuthError) as caught:
        await read_all(conn)
    assert route.call_count == 2  # replayed once, not more
    text = caught.value.one_line()
    assert "INVALID_SESSION_ID" in text
    assert ACCESS not in text and ACCESS2 not in text


@respx.mock
async def test_refused_credentials_name_the_reason_but_not_the_secret(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400,
            json={"error": "invalid_grant", "error_description": f"expired access/refresh token {REFRESH}"},
        )
    )
    with pytest.raises(AuthError) as caught:
        await read_all(conn)
    text = caught.value.one_line()
    assert "invalid_grant" in text or "expired" in text
    assert REFRESH not in text and CLIENT_SECRET not in text


@respx.mock
async def test_error_bodies_keep_the_error_code(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(f"{DATA}/queryAll").mock(
        return_value=sf_error(
            400,
            "INVALID_FIELD",
            "No such column 'seats_purchased__c' on entity 'Account'",
            ["seats_purchased__c"],
        )
    )
    with pytest.raises(FatalAPIError) as caught:
        await read_all(conn, "accounts")
    assert caught.value.error_code == "INVALID_FIELD" and caught.value.status_code == 400
    assert "seats_purchased__c" in caught.value.one_line()
    assert "access_token" not in caught.value.one_line()


@respx.mock
async def test_5xx_is_retried_then_a_retriable_error(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    route = respx.get(QUERY).mock(return_value=sf_error(503, "SERVER_UNAVAILABLE", "down"))
    with pytest.raises(RetriableAPIError) as caught:
        await read_all(conn)
    assert caught.value.error_code == "SERVER_UNAVAILABLE"
    assert route.call_count == FAST.max_attempts


@respx.mock
async def test_collections_results_are_mapped_back_by_position(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    patch = respx.patch(f"{DATA}/composite/sobjects").mock(
        return_value=httpx.Response(
            200,
            json=[
                {"id": "001A", "success": True, "errors": []},
                {
                    "success": False,
                    "errors": [
                        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
                    ],
                },
                {
                    "success": False,
                    "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}],
                },
            ],
        )
    )
    values = {"loyalty_score": "80", "segment": "champion"}
    results = await conn.update_accounts(
        [
            FieldUpdate(account_id="001A", values=values),
            FieldUpdate(account_id="001B", values=values),
            FieldUpdate(account_id="001C", values=values),
            FieldUpdate(account_id="001D", values={"loyalty_score": "not a number"}),
        ]
    )
    assert [(r.ref, r.ok, r.retriable) for r in results] == [
        ("001A", True, True),
        ("001B", False, False),
        ("001C", False, True),
        ("001D", False, False),
    ]
    assert results[1].error is not None and "ENTITY_IS_DELETED" in results[1].error
    body = json.loads(patch.calls.last.request.content)
    assert body["allOrNone"] is False and len(body["records"]) == 3
    assert body["records"][0] == {
        "attributes": {"type": "Account"},
        "id": "001A",
        "Crm_Upsell_Loyalty_Score__c": 80.0,
        "Crm_Upsell_Segment__c": "champion",
    }


@respx.mock
async def test_task_creation_is_never_resent_blindly(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    route = respx.post(f"{DATA}/composite/sobjects").mock(return_value=sf_error(502, "BAD_GATEWAY", "oops"))
    draft = TaskDraft(
        key="k1", account_id="001A", owner_id="005A", subject="s", body="b", due=date(2026, 11, 15)
    )
    with pytest.raises(RetriableAPIError):
        await conn.create_tasks([draft])
    assert route.call_count == 1  # a 502 after sending may have created it: find_tasks decides


@respx.mock
async def test_find_tasks_escapes_keys(conn: SalesforceConnector) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    route = respx.get(QUERY).mock(
        return_value=httpx.Response(
            200,
            json={"done": True, "records": [{"Id": "00TA", "Crm_Upsell_Key__c": "a'b"}]},
        )
    )
    assert await conn.find_tasks(["a'b", "' OR Name != '"]) == {"a'b": "00TA"}
    q = parse_qs(route.calls.last.request.url.query.decode())["q"][0]
    assert q.endswith("WHERE Crm_Upsell_Key__c IN ('a\\'b', '\\' OR Name != \\'')")


@respx.mock
async def test_get_deleted_refusing_the_window_falls_back_to_reconcile_by_ids(
    conn: SalesforceConnector,
) -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    deleted = respx.get(f"{DATA}/sobjects/Contact/deleted/").mock(
        return_value=sf_error(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago")
    )
    ids = respx.get(QUERY).mock(
        return_value=httpx.Response(200, json={"done": True, "records": [{"Id": "003A"}, {"Id": "003B"}]})
    )
    since = datetime.now(UTC) - timedelta(days=2)
    pages = [p async for p in conn.read_deleted("contacts", since)]
    assert [(p.present_ids, p.present_prefix) for p in pages] == [(["003A", "003B"], "003")]
    assert deleted.call_count == 1
    params = parse_qs(deleted.calls.last.request.url.query.decode())
    assert params["end"][0].endswith(":00+00:00")  # whole minutes: Salesforce ignores seconds
    q = parse_qs(ids.calls.last.request.url.query.decode())["q"][0]
    assert q == "SELECT Id FROM Contact ORDER BY Id"
