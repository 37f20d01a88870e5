"""``Retry-After`` as an HTTP-date (RFC 9110 section 10.2.3), read by the one HTTP layer for every CRM.

Each sandbox answers the first CRM request with a 429 (Salesforce: a 503, its way of saying "too many
requests") carrying a ``Retry-After`` date 4 s ahead: the connector waits at least that long before
its next attempt, and the read completes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crm_upsell_connector.connector import ConnectorContext, load_plugins
from crm_upsell_connector.http.client import retry_after_seconds
from crm_upsell_connector.models import Stream
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxOptions, SandboxServer, retry_after_value
from crm_upsell_connector.secrets import SecretResolver

WAIT_S = 4.0


def _response(headers: dict[str, str], status: int = 429) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_both_forms_are_read_and_a_date_is_measured_from_the_response_date() -> None:
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(_response({"Retry-After": "7"})) == 7.0
    ahead = "Sun, 29 Nov 2026 12:00:04 GMT"
    assert retry_after_seconds(_response({"Retry-After": ahead}), now=now) == 4.0
    # The server's own Date wins over this machine's clock (which may be off).
    skewed = now + timedelta(minutes=10)
    served = {"Retry-After": ahead, "Date": "Sun, 29 Nov 2026 12:00:00 GMT"}
    assert retry_after_seconds(_response(served), now=skewed) == 4.0
    # RFC 850 and asctime forms are HTTP-dates too.
    assert retry_after_seconds(_response({"Retry-After": "Sunday, 29-Nov-26 12:00:04 GMT"}), now=now) == 4.0
    assert retry_after_seconds(_response({"Retry-After": "Sun Nov 29 12:00:04 2026"}), now=now) == 4.0
    # Past dates mean now, absurd waits are cut to the ceiling, nonsense is ignored.
    assert retry_after_seconds(_response({"Retry-After": "Sun, 29 Nov 2026 11:00:00 GMT"}), now=now) == 0.0
    assert retry_after_seconds(_response({"Retry-After": "Mon, 30 Nov 2026 12:00:00 GMT"}), now=now) == 900.0
    assert retry_after_seconds(_response({"Retry-After": "86400"}), ceiling=60) == 60.0
    assert retry_after_seconds(_response({"Retry-After": "soon"})) is None
    assert retry_after_seconds(_response({"Retry-After": "nan"})) is None
    assert retry_after_seconds(_response({})) is None
    # What the sandboxes send reads back as at least the wait asked for.
    value = retry_after_value("date", WAIT_S, now=now.timestamp() + 0.3)
    assert retry_after_seconds(_response({"Retry-After": value}), now=now + timedelta(seconds=0.3)) >= WAIT_S


@pytest.mark.parametrize("crm", ["hubspot", "salesforce", "zoho"])
async def test_a_429_with_a_date_4s_ahead_waits_at_least_4s_and_the_read_completes(crm: str) -> None:
    plugin = load_plugins()[crm]
    options = SandboxOptions(
        accounts=5,
        seed=3,
        faults=FaultOptions(storm_next=1, retry_after="date", retry_after_s=WAIT_S),
    )
    scenario = build_scenario(accounts=5, seed=3)
    app = plugin.sandbox_app(scenario, options)
    with SandboxServer(app) as base_url:
        settings = plugin.settings_model.model_validate(plugin.sandbox_settings(base_url, options))
        secrets = SecretResolver(environ=plugin.sandbox_secrets(options))
        connector = plugin.create(settings, secrets, ConnectorContext("retry-after", ()))
        stream = next(name for name, kind in connector.streams.items() if kind is Stream.OWNERS)
        try:
            started = time.monotonic()
            records = [r async for page in connector.read(stream, None) for r in page.records]
            elapsed = time.monotonic() - started
        finally:
            await connector.close()
        stats = app.state.sandbox.runtime.stats.snapshot()  # type: ignore[attr-defined]
    assert stats["faults"].get("storm") == 1, stats
    assert elapsed >= WAIT_S
    assert len(records) == len(scenario.owners)
