"""The shared HTTP layer: retries, rate limits, token refresh and redaction, as a user of a sync sees them."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from crm_upsell_connector.errors import (
    AuthError,
    FatalAPIError,
    RateLimitError,
    RetriableAPIError,
)
from crm_upsell_connector.http.auth import AccessToken, RefreshingTokenAuth, fetch_oauth_token
from crm_upsell_connector.http.client import ApiClient
from crm_upsell_connector.http.ratelimit import Clock, LimitHint, RateLimiter
from crm_upsell_connector.http.redact import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    redact_headers,
    redact_url,
    register_secret,
    scrub,
)
from crm_upsell_connector.http.settings import HttpSettings

BASE = "https://crm.example.test"


def fast_settings(**overrides: object) -> HttpSettings:
    values: dict[str, object] = {
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.01,
        "max_attempts": 5,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return HttpSettings.model_validate(values)


def make_client(auth: httpx.Auth | None = None, **overrides: object) -> ApiClient:
    return ApiClient(
        BASE,
        auth=auth,
        limiter=RateLimiter(10_000, 1.0, max_in_flight=32),
        settings=fast_settings(**overrides),
    )


@pytest.fixture
async def client() -> AsyncIterator[ApiClient]:
    api = make_client()
    yield api
    await api.close()


# --- retries -------------------------------------------------------------------------------------


async def test_server_errors_are_retried_until_success(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/objects").mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": True})]
    )

    response = await client.request("GET", "/objects")

    assert response.json() == {"ok": True}
    assert route.call_count == 3
    assert client.stats.calls == 3
    assert client.stats.retries == 2
    assert client.stats.by_endpoint == {"GET /objects": 3}


async def test_429_waits_as_long_as_retry_after_says_and_is_counted(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/objects").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.05"}, text="slow down"),
            httpx.Response(200, json={"results": []}),
        ]
    )

    started = time.monotonic()
    response = await client.request("GET", "/objects")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert route.call_count == 2
    # The backoff alone would be ~1 ms; only the Retry-After explains the wait.
    assert elapsed >= 0.045
    assert client.stats.rate_limited == 1
    assert client.stats.retries == 1


async def test_429_retries_even_a_write_that_is_not_idempotent(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/tasks").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(201, json={"id": "t1"}),
        ]
    )

    started = time.monotonic()
    response = await client.request("POST", "/tasks", json={"subject": "x"}, idempotent=False)

    assert response.status_code == 201
    assert route.call_count == 2
    # "Retry-After: 0" means now, not "wait out the whole rate-limit window".
    assert time.monotonic() - started < 0.5


async def test_non_idempotent_post_is_not_retried_on_502(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/tasks").mock(
        side_effect=[httpx.Response(502), httpx.Response(201, json={"id": "t1"})]
    )

    with pytest.raises(RetriableAPIError) as info:
        await client.request("POST", "/tasks", json={"subject": "call them"}, idempotent=False)

    # The CRM may have created the task: sending it again could duplicate it.
    assert route.call_count == 1
    assert info.value.status_code == 502
    assert client.stats.retries == 0


async def test_plain_post_defaults_to_not_idempotent(client: ApiClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/tasks").mock(side_effect=[httpx.Response(500), httpx.Response(201)])

    with pytest.raises(RetriableAPIError):
        await client.request("POST", "/tasks", json={})

    assert route.call_count == 1


async def test_idempotent_post_is_retried_on_502(client: ApiClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/search").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json={"results": []})]
    )

    response = await client.request("POST", "/search", json={}, idempotent=True)

    assert response.status_code == 200
    assert route.call_count == 2


async def test_non_idempotent_post_is_retried_when_the_connection_never_opened(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/tasks").mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(201, json={"id": "t1"})]
    )

    response = await client.request("POST", "/tasks", json={"subject": "x"}, idempotent=False)

    assert response.json() == {"id": "t1"}
    assert route.call_count == 2


async def test_non_idempotent_post_is_not_retried_when_the_connection_dropped_mid_request(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/tasks").mock(
        side_effect=[httpx.ReadTimeout("read timed out"), httpx.Response(201)]
    )

    with pytest.raises(RetriableAPIError, match="ReadTimeout"):
        await client.request("POST", "/tasks", json={}, idempotent=False)

    assert route.call_count == 1


async def test_get_is_retried_after_a_dropped_connection(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/objects").mock(
        side_effect=[httpx.ReadError("reset by peer"), httpx.Response(200, json={})]
    )

    assert (await client.request("GET", "/objects")).status_code == 200
    assert route.call_count == 2


async def test_400_is_fatal_with_body_snippet_and_masked_url(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(url__startswith=f"{BASE}/objects").mock(
        return_value=httpx.Response(400, text="Property 'seats_purchasd' does not exist")
    )

    with pytest.raises(FatalAPIError) as info:
        await client.request("GET", "/objects?hapikey=HAPI-SECRET-KEY-1&access_token=AT-SECRET-0001&limit=10")

    error = info.value
    message = error.one_line()
    assert route.call_count == 1  # another try would not fix it
    assert error.status_code == 400
    assert "HTTP 400" in message
    assert "Property 'seats_purchasd' does not exist" in message
    assert "HAPI-SECRET-KEY-1" not in message
    assert "AT-SECRET-0001" not in message
    assert "limit=10" in message
    assert error.request is not None
    assert "hapikey=***" in error.request.url
    assert "access_token=***" in error.request.url
    assert "HAPI-SECRET-KEY-1" not in str(error.request) + str(error.response)


async def test_error_body_is_cut_short_and_scrubbed(client: ApiClient, respx_mock: respx.MockRouter) -> None:
    register_secret("body-secret-token-123")
    body = "echo: body-secret-token-123 " + "x" * 10_000
    respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(422, text=body))

    with pytest.raises(FatalAPIError) as info:
        await client.request("GET", "/objects")

    message = info.value.one_line()
    assert "body-secret-token-123" not in message
    assert len(message) < 600


@pytest.mark.parametrize("attempts", [1, 3])
async def test_max_attempts_is_respected(respx_mock: respx.MockRouter, attempts: int) -> None:
    api = make_client(max_attempts=attempts)
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(503))
    try:
        with pytest.raises(RetriableAPIError) as info:
            await api.request("GET", "/objects")
    finally:
        await api.close()

    assert route.call_count == attempts
    assert info.value.status_code == 503


async def test_persistent_429_gives_up_with_rate_limit_error(respx_mock: respx.MockRouter) -> None:
    api = make_client(max_attempts=3)
    route = respx_mock.get(f"{BASE}/objects").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "0.001"})
    )
    try:
        with pytest.raises(RateLimitError) as info:
            await api.request("GET", "/objects")
    finally:
        await api.close()

    assert route.call_count == 3
    assert api.stats.rate_limited == 3
    assert info.value.retry_after == pytest.approx(0.001)


async def test_401_without_refreshable_auth_is_an_auth_error(
    client: ApiClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(401, text="bad token"))

    with pytest.raises(AuthError, match="HTTP 401"):
        await client.request("GET", "/objects")

    assert route.call_count == 1


# --- rate limiter --------------------------------------------------------------------------------


class FakeClock(Clock):
    """Time that only moves when someone sleeps (or the test moves it)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


async def _start(limiter: RateLimiter, clock: FakeClock, starts: list[float]) -> None:
    async with limiter.slot():
        starts.append(clock.now())


async def test_rate_limiter_never_starts_more_than_budget_in_any_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, max_in_flight=64, clock=clock)
    budget = limiter.budget
    assert 90 <= budget < 100  # some headroom below the CRM's own limit

    starts: list[float] = []
    await asyncio.gather(*(_start(limiter, clock, starts) for _ in range(350)))

    assert len(starts) == 350
    starts.sort()
    for i, t in enumerate(starts):
        in_window = sum(1 for s in starts[: i + 1] if s > t - limiter.interval_s)
        assert in_window <= budget, f"{in_window} requests started in the 10 s before t={t}"
    # It does not wait more than needed: the first budget's worth starts at once, then a window each.
    assert starts[budget - 1] == starts[0]
    assert starts[-1] - starts[0] == pytest.approx(10.0 * (350 // budget))


async def test_rate_limiter_window_is_rolling_not_fixed() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(6, 10.0, clock=clock)
    assert limiter.budget == 5
    starts: list[float] = []

    for _ in range(3):
        await _start(limiter, clock, starts)
    clock.t = 5.0
    for _ in range(2):
        await _start(limiter, clock, starts)
    clock.t = 9.0
    await _start(limiter, clock, starts)  # five sent in (−1, 9]: waits for the three from t=0 to leave
    for _ in range(2):
        await _start(limiter, clock, starts)
    await _start(limiter, clock, starts)  # window (5, 15] is full again: waits for the two from t=5

    assert starts == [0.0, 0.0, 0.0, 5.0, 5.0, 10.0, 10.0, 10.0, 15.0]


async def test_rate_limiter_pauses_everyone_after_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    starts: list[float] = []
    await _start(limiter, clock, starts)

    limiter.observe(LimitHint(retry_after_s=2.5))
    await asyncio.gather(*(_start(limiter, clock, starts) for _ in range(3)))

    assert starts[0] == 1_000.0
    assert starts[1:] == [1_002.5] * 3
    assert limiter.waited_s == pytest.approx(2.5)


async def test_rate_limiter_waits_for_the_window_when_the_crm_says_none_remain() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    starts: list[float] = []
    await _start(limiter, clock, starts)
    clock.t += 4.0

    limiter.observe(LimitHint(max_requests=100, remaining=0, interval_s=10.0))
    await _start(limiter, clock, starts)

    assert starts == [1_000.0, 1_010.0]


async def test_rate_limiter_retry_after_zero_means_now() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    starts: list[float] = []
    await _start(limiter, clock, starts)

    limiter.observe(LimitHint(remaining=0, retry_after_s=0.0))
    await _start(limiter, clock, starts)

    assert starts == [1_000.0, 1_000.0]


async def test_rate_limiter_adopts_the_limit_the_crm_announces() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1_000, 60.0, clock=clock)

    limiter.observe(LimitHint(max_requests=20, remaining=15, interval_s=2.0))
    starts: list[float] = []
    await asyncio.gather(*(_start(limiter, clock, starts) for _ in range(40)))

    assert limiter.max_requests == 20
    assert limiter.interval_s == 2.0
    assert starts.count(1_000.0) == limiter.budget
    assert max(starts) <= 1_000.0 + 2.0 * 3


async def test_client_pauses_its_limiter_on_429(respx_mock: respx.MockRouter) -> None:
    clock = FakeClock()
    limiter = RateLimiter(10_000, 1.0, clock=clock)
    api = ApiClient(BASE, auth=None, limiter=limiter, settings=fast_settings())
    respx_mock.get(f"{BASE}/objects").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.01"}), httpx.Response(200)]
    )
    try:
        await api.request("GET", "/objects")
    finally:
        await api.close()

    # The 429's Retry-After reached the shared limiter, so other requests pause too.
    assert limiter.waited_s == pytest.approx(0.01)
    assert api.stats.rate_limited == 1


def test_rate_limiter_rejects_an_impossible_limit() -> None:
    with pytest.raises(ValueError, match="at least one request"):
        RateLimiter(0, 10.0)


# --- token refresh -------------------------------------------------------------------------------


class TokenSource:
    """Hands out tok-1, tok-2, ... ; ``ttls`` sets each token's lifetime in seconds."""

    def __init__(self, *ttls: float, delay: float = 0.0) -> None:
        self.ttls = list(ttls)
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> AccessToken:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        ttl = self.ttls[min(self.calls - 1, len(self.ttls) - 1)] if self.ttls else 3_600.0
        return AccessToken(value=f"token-value-{self.calls:04d}", expires_at=time.time() + ttl, extra={})


def seen_tokens(route: respx.Route) -> list[str]:
    return [call.request.headers["Authorization"].removeprefix("Bearer ") for call in route.calls]


async def test_token_refreshed_when_within_the_margin_of_expiry(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(60.0, 3_600.0)  # the first expires inside the 120 s margin
    auth = RefreshingTokenAuth(source, margin_s=120.0)
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(200))

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        for _ in range(3):
            await http.get("/objects")

    assert seen_tokens(route) == ["token-value-0001", "token-value-0002", "token-value-0002"]
    assert auth.refreshes == 2


async def test_fresh_token_is_reused(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0)
    auth = RefreshingTokenAuth(source)
    respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(200))

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        for _ in range(5):
            await http.get("/objects")

    assert source.calls == 1


async def test_401_refreshes_and_replays_once(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0)
    auth = RefreshingTokenAuth(source)

    def crm(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-value-0001":
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json={"ok": True})

    route = respx_mock.post(f"{BASE}/search").mock(side_effect=crm)

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        response = await http.post("/search", json={"q": 1})

    assert response.status_code == 200
    assert seen_tokens(route) == ["token-value-0001", "token-value-0002"]
    # The replayed request carries the same body.
    assert route.calls[1].request.content == route.calls[0].request.content
    assert auth.refreshes == 2


async def test_second_401_is_returned_not_looped(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0)
    auth = RefreshingTokenAuth(source)
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(401))

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        response = await http.get("/objects")

    assert response.status_code == 401
    assert route.call_count == 2
    assert source.calls == 2


async def test_second_401_through_the_api_client_is_an_auth_error(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0)
    api = make_client(auth=RefreshingTokenAuth(source))
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(401))
    try:
        with pytest.raises(AuthError):
            await api.request("GET", "/objects")
    finally:
        await api.close()

    assert route.call_count == 2
    assert source.calls == 2


async def test_custom_expired_answer_triggers_refresh(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0)
    auth = RefreshingTokenAuth(
        source,
        scheme="Zoho-oauthtoken",
        is_expired=lambda r: r.status_code == 400 and b"INVALID_TOKEN" in r.content,
    )

    def crm(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"].endswith("0001"):
            return httpx.Response(400, json={"code": "INVALID_TOKEN"})
        return httpx.Response(200)

    route = respx_mock.get(f"{BASE}/objects").mock(side_effect=crm)

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        assert (await http.get("/objects")).status_code == 200

    assert route.calls[1].request.headers["Authorization"] == "Zoho-oauthtoken token-value-0002"


async def test_concurrent_requests_share_a_single_refresh(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0, delay=0.02)
    auth = RefreshingTokenAuth(source)
    route = respx_mock.get(f"{BASE}/objects").mock(return_value=httpx.Response(200))

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        responses = await asyncio.gather(*(http.get("/objects") for _ in range(10)))

    assert all(r.status_code == 200 for r in responses)
    assert source.calls == 1
    assert set(seen_tokens(route)) == {"token-value-0001"}


async def test_concurrent_401s_share_a_single_refresh(respx_mock: respx.MockRouter) -> None:
    source = TokenSource(3_600.0, delay=0.01)
    auth = RefreshingTokenAuth(source)
    await auth.current()  # token-value-0001, which the CRM has revoked

    def crm(request: httpx.Request) -> httpx.Response:
        ok = request.headers["Authorization"] != "Bearer token-value-0001"
        return httpx.Response(200 if ok else 401)

    respx_mock.get(f"{BASE}/objects").mock(side_effect=crm)

    async with httpx.AsyncClient(base_url=BASE, auth=auth) as http:
        responses = await asyncio.gather(*(http.get("/objects") for _ in range(8)))

    assert [r.status_code for r in responses] == [200] * 8
    assert source.calls == 2


async def test_refreshed_token_is_masked_in_logs(respx_mock: respx.MockRouter) -> None:
    auth = RefreshingTokenAuth(TokenSource(3_600.0))
    token = await auth.current()
    assert token.value not in scrub(f"Authorization: {token.value}")


# --- fetch_oauth_token ---------------------------------------------------------------------------

TOKEN_URL = "https://auth.example.test/oauth/v1/token"
CLIENT_SECRET = "cs-very-secret-0123456789"
REFRESH_TOKEN = "rt-very-secret-9876543210"


def refresh_form() -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": "client-id-1",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }


def assert_no_secrets(error: AuthError) -> None:
    text = f"{error} {error.one_line()} {error.hint} {error!r}"
    assert CLIENT_SECRET not in text
    assert REFRESH_TOKEN not in text


async def test_fetch_oauth_token_success(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "at-fresh-token-000111",
                "refresh_token": "rt-rotated-token-222333",
                "expires_in": 1800,
                "instance_url": "https://eu1.example.test",
            },
        )
    )

    async with httpx.AsyncClient() as http:
        token, body = await fetch_oauth_token(http, TOKEN_URL, refresh_form())

    assert token.value == "at-fresh-token-000111"
    assert token.expires_at == pytest.approx(time.time() + 1800, abs=5)
    assert token.extra["instance_url"] == "https://eu1.example.test"
    assert body["refresh_token"] == "rt-rotated-token-222333"
    assert b"grant_type=refresh_token" in route.calls[0].request.content
    # Both the new access token and the rotated refresh token are masked from now on.
    masked = scrub("got at-fresh-token-000111 and rt-rotated-token-222333")
    assert "at-fresh-token-000111" not in masked
    assert "rt-rotated-token-222333" not in masked


async def test_fetch_oauth_token_refused_names_the_reason_without_secrets(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400,
            json={"error": "invalid_grant", "error_description": f"refresh token {REFRESH_TOKEN} is revoked"},
        )
    )

    async with httpx.AsyncClient() as http:
        with pytest.raises(AuthError) as info:
            await fetch_oauth_token(http, TOKEN_URL, refresh_form())

    assert "HTTP 400" in str(info.value)
    assert "is revoked" in str(info.value)
    assert "crm-upsell auth set" in info.value.one_line()
    assert_no_secrets(info.value)


async def test_fetch_oauth_token_non_json_failure(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(TOKEN_URL).mock(return_value=httpx.Response(502, text="<html>bad gateway</html>"))

    async with httpx.AsyncClient() as http:
        with pytest.raises(AuthError, match="HTTP 502") as info:
            await fetch_oauth_token(http, TOKEN_URL, refresh_form())

    assert_no_secrets(info.value)


async def test_fetch_oauth_token_200_without_access_token(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={"token_type": "bearer"}))

    async with httpx.AsyncClient() as http:
        with pytest.raises(AuthError, match="refused the credentials") as info:
            await fetch_oauth_token(http, TOKEN_URL, refresh_form())

    assert_no_secrets(info.value)


async def test_fetch_oauth_token_unreachable(respx_mock: respx.MockRouter) -> None:
    url = f"{TOKEN_URL}?client_secret={CLIENT_SECRET}"
    respx_mock.post(url__startswith=TOKEN_URL).mock(side_effect=httpx.ConnectError("no route to host"))

    async with httpx.AsyncClient() as http:
        with pytest.raises(AuthError, match="could not reach the token endpoint") as info:
            await fetch_oauth_token(http, url, refresh_form())

    assert "ConnectError" in str(info.value)
    assert_no_secrets(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- redaction -----------------------------------------------------------------------------------


def test_scrub_masks_registered_secrets() -> None:
    register_secret("s3cr3t-registered-value")
    assert scrub("the key is s3cr3t-registered-value, see?") == f"the key is {MASK}, see?"


def test_scrub_leaves_short_values_alone() -> None:
    # Registering a tiny value would mangle every log line that happens to contain it.
    register_secret("abc")
    register_secret(None)
    register_secret("")
    assert scrub("abcdef abc") == "abcdef abc"


def test_scrub_masks_longest_secret_first() -> None:
    register_secret("overlap-secret")
    register_secret("overlap-secret-longer-part")
    assert scrub("x overlap-secret-longer-part y") == f"x {MASK} y"


def test_scrub_masks_bearer_tokens() -> None:
    assert scrub("Authorization: Bearer eyJhbGciOi.J9-payload_x") == f"Authorization: Bearer {MASK}"
    assert scrub("authorization: bearer abc.def") == f"authorization: bearer {MASK}"
    assert scrub("Zoho-oauthtoken 1000.abcdef.123456") == f"Zoho-oauthtoken {MASK}"


def test_scrub_masks_secret_parameters() -> None:
    text = "GET /cb?access_token=AAA111&refresh_token=BBB222&client_secret=CCC333&limit=5"
    masked = scrub(text)
    for value in ("AAA111", "BBB222", "CCC333"):
        assert value not in masked
    assert "access_token=***" in masked
    assert "limit=5" in masked


def test_scrub_masks_secret_fields_in_json_text() -> None:
    masked = scrub('{"access_token": "AAA111", "refresh_token":"BBB222", "expires_in": 1800}')
    assert "AAA111" not in masked
    assert "BBB222" not in masked
    assert '"expires_in": 1800' in masked


def test_redact_url_masks_query_secrets_and_user_info() -> None:
    url = "https://user:p4ssw0rd@crm.example.test/v1/x?code=oauth-code-123&page=2&hapikey=HK-123456"
    redacted = redact_url(url)
    assert redacted.startswith("https://***@crm.example.test/v1/x?")
    assert "p4ssw0rd" not in redacted
    assert "oauth-code-123" not in redacted
    assert "HK-123456" not in redacted
    assert "code=***" in redacted
    assert "page=2" in redacted


def test_redact_url_keeps_a_plain_url() -> None:
    url = "https://crm.example.test/v1/objects?limit=100&after=abc"
    assert redact_url(url) == url


def test_redact_headers() -> None:
    register_secret("custom-header-secret-1")
    headers = {
        "Authorization": "Bearer abc.def.ghi",
        "X-API-Key": "k-123456789",
        "Cookie": "session=xyz",
        "X-Echo": "value custom-header-secret-1",
        "Content-Type": "application/json",
    }
    redacted = redact_headers(headers)
    assert redacted["Authorization"] == MASK
    assert redacted["X-API-Key"] == MASK
    assert redacted["Cookie"] == MASK
    assert redacted["X-Echo"] == f"value {MASK}"
    assert redacted["Content-Type"] == "application/json"


def test_redacting_filter_scrubs_log_records(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("log-secret-abcdef")
    log = logging.getLogger("crm_upsell_connector.test.redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("token %s used with %s", "log-secret-abcdef", "Bearer zzz.yyy")
        log.info("GET /x?access_token=%s", "plain-at-value")

    assert "log-secret-abcdef" not in caplog.text
    assert "zzz.yyy" not in caplog.text
    assert "plain-at-value" not in caplog.text
    assert caplog.messages[0] == f"token {MASK} used with Bearer {MASK}"


def test_redacting_filter_scrubs_exception_tracebacks() -> None:
    register_secret("traceback-secret-987654")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("crm_upsell_connector.test.traceback")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError("failed with traceback-secret-987654")
        except RuntimeError:
            log.exception("sync failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True

    text = stream.getvalue()
    assert "sync failed" in text
    assert "RuntimeError: failed with ***" in text
    assert "traceback-secret-987654" not in text


def test_install_log_redaction_covers_a_loggers_handlers() -> None:
    register_secret("installed-secret-5555")
    stream = io.StringIO()
    log = logging.getLogger("crm_upsell_connector.test.install")
    log.propagate = False
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    try:
        install_log_redaction(log)
        install_log_redaction(log)  # idempotent
        log.warning("secret is %s", "installed-secret-5555")
    finally:
        log.removeHandler(handler)
        log.propagate = True

    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    assert stream.getvalue().strip() == f"secret is {MASK}"
