"""HubSpot marketing engagement over real HTTP: contact properties rolled up per company.

The expected figures are counted here from the scenario's marketing data, independently of the
feature SQL: lifetime opens and clicks, one recent open per contact on a first sync, the share of
contacts engaged in 90 days, days since the last engagement and the unsubscribed share.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from crm_upsell_hubspot.connector import HubSpotConnector, HubSpotPlugin
from crm_upsell_hubspot.sandbox import create_app, hubspot_id, sandbox_state, set_properties
from crm_upsell_hubspot.settings import HubSpotSettings
from starlette.applications import Starlette

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.scenario.marketing import Marketing, SEngagement, build_marketing
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

PLUGIN = HubSpotPlugin()
CONNECTION = "hs"


@dataclass
class Running:
    app: Starlette
    scenario: Scenario
    marketing: Marketing
    options: SandboxOptions
    base_url: str

    def connector(self) -> HubSpotConnector:
        settings = HubSpotSettings.model_validate(PLUGIN.sandbox_settings(self.base_url, self.options))
        secrets = SecretResolver(PLUGIN.sandbox_secrets(self.options))
        return HubSpotConnector(settings, secrets, ConnectorContext(CONNECTION, ()))


@pytest.fixture
def sandbox() -> Iterator[Running]:
    options = SandboxOptions(accounts=40, seed=11)
    scenario = build_scenario(accounts=40, seed=11)
    app = create_app(scenario, options)
    with SandboxServer(app) as base_url:
        yield Running(app, scenario, build_marketing(scenario), options, base_url)


@pytest.fixture
async def connector(sandbox: Running) -> AsyncIterator[HubSpotConnector]:
    conn = sandbox.connector()
    yield conn
    await conn.close()


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


async def _sync(engine: sa.Engine, connector: HubSpotConnector) -> None:
    report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
    assert not report.failed


def _features(engine: sa.Engine, now: datetime) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        return {
            str(r["account_id"]): r for r in compute_features(conn, CONNECTION, now, FeaturesConfig(), [])
        }


def _people(sandbox: Running, company_key: str) -> list[SEngagement]:
    return [
        sandbox.marketing.engagement[c.key] for c in sandbox.scenario.contacts if c.company_key == company_key
    ]


def _recent(when: datetime | None, now: datetime, days: int) -> bool:
    return when is not None and now - timedelta(days=days) <= when <= now


def _pick(sandbox: Running) -> dict[str, str]:
    """One company of each marketing kind (with at least two contacts where there is one)."""
    chosen: dict[str, str] = {}
    for company in sandbox.scenario.companies:
        kind = sandbox.marketing.kinds[company.key]
        if kind not in chosen or (
            len(_people(sandbox, company.key)) > 1 >= len(_people(sandbox, chosen[kind]))
        ):
            chosen[kind] = company.key
    assert set(chosen) == {"engaged", "disengaged", "mixed"}
    return chosen


async def test_engagement_features_equal_hand_counts(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    await _sync(engine, connector)
    now = sandbox.scenario.now
    rows = _features(engine, now)
    for kind, key in _pick(sandbox).items():
        people = _people(sandbox, key)
        got = rows[hubspot_id(sandbox.app, key)]
        assert got["email_opens_total"] == sum(p.email_opens for p in people), kind
        assert got["email_clicks_total"] == sum(p.email_clicks for p in people), kind
        assert got["site_visits_total"] == sum(p.site_visits for p in people), kind
        for days in (30, 90, 365):
            # A first sync knows only the lifetime count and the last open: one open per recent opener.
            assert got[f"email_opens_{days}d"] == sum(_recent(p.last_open_at, now, days) for p in people)
            assert got[f"email_clicks_{days}d"] == sum(_recent(p.last_click_at, now, days) for p in people)
        engaged = [
            p
            for p in people
            if any(_recent(t, now, 90) for t in (p.last_open_at, p.last_click_at, p.last_visit_at))
        ]
        assert got["engaged_contacts_share_90d"] == pytest.approx(len(engaged) / len(people)), kind
        assert got["unsubscribed_share"] == pytest.approx(sum(p.unsubscribed for p in people) / len(people))
        last = [
            t for p in people for t in (p.last_open_at, p.last_click_at, p.last_visit_at) if t is not None
        ]
        expected_days = math.floor((now - max(last)).total_seconds() / 86400) if last else None
        assert got["days_since_last_engagement"] == expected_days, kind
        # HubSpot contacts carry no campaign membership: missing, not zero.
        assert got["campaign_responses_90d"] is None
    picked = _pick(sandbox)
    assert rows[hubspot_id(sandbox.app, picked["engaged"])]["engaged_contacts_share_90d"] == 1.0
    assert rows[hubspot_id(sandbox.app, picked["disengaged"])]["unsubscribed_share"] == 1.0


async def test_windowed_opens_come_from_the_change_between_syncs(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    await _sync(engine, connector)
    key = _pick(sandbox)["engaged"]
    contact = next(c for c in sandbox.scenario.contacts if c.company_key == key)
    before = sandbox.marketing.engagement[contact.key]
    sb = sandbox_state(sandbox.app)
    sb.runtime.clock.advance(40 * 86400)  # 40 days on: the first sync's snapshot lies before the window
    opened = datetime.fromtimestamp(sb.now_ms() / 1000, tz=UTC)
    cid = hubspot_id(sandbox.app, contact.key)
    set_properties(
        sandbox.app,
        "contacts",
        cid,
        {"hs_email_open": str(before.email_opens + 7), "hs_email_last_open_date": opened.isoformat()},
    )
    await _sync(engine, connector)
    with engine.connect() as conn:
        kept = (
            conn.execute(
                sa.select(schema.engagement_snapshots.c.email_opens)
                .where(schema.engagement_snapshots.c.contact_id == cid)
                .order_by(schema.engagement_snapshots.c.taken_at)
            )
            .scalars()
            .all()
        )
    assert kept == [before.email_opens, before.email_opens + 7]
    now = opened + timedelta(hours=1)
    got = _features(engine, now)[hubspot_id(sandbox.app, key)]
    others = [p for p in _people(sandbox, key) if p.contact_key != contact.key]
    assert got["email_opens_30d"] == 7 + sum(_recent(p.last_open_at, now, 30) for p in others)
    assert got["email_opens_total"] == before.email_opens + 7 + sum(p.email_opens for p in others)
    assert got["days_since_last_engagement"] == 0


async def test_engagement_costs_no_extra_call(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    """Full sync: ceil(N / 100) list calls per stream (owners 500), as bench/README.md says; then one
    search call per stream when nothing changed."""
    report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
    minimum = sum(
        math.ceil(s.records / (500 if s.stream == "owners" else 100)) or 1 for s in report.streams.values()
    )
    assert connector.stats.calls == minimum
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(schema.contact_engagement)).scalar_one()
    assert stored == len(sandbox.scenario.contacts)
    before = connector.stats.calls
    await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
    assert connector.stats.calls - before == len(connector.streams)
