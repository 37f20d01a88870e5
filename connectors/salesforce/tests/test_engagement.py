"""Salesforce marketing engagement over real HTTP: CampaignMember as a stream, contacts' opt-out.

Expected figures are counted here from the scenario's marketing data: campaign responses in 90
days, the share of contacts who answered a campaign in 90 days, days since the last response and
the unsubscribed share (``HasOptedOutOfEmail``). Salesforce keeps no open or click counters, so
those are missing, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from crm_upsell_salesforce.connector import SalesforceConnector, SalesforcePlugin
from crm_upsell_salesforce.mapping import SOBJECTS
from crm_upsell_salesforce.sandbox import create_app, sandbox_state
from crm_upsell_salesforce.settings import SalesforceSettings
from starlette.applications import Starlette

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.scenario.marketing import Marketing, SCampaignMember, build_marketing
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

PLUGIN = SalesforcePlugin()
CONNECTION = "sbx"


class Org:
    def __init__(self, app: Starlette, scenario: Scenario, options: SandboxOptions, base_url: str) -> None:
        self.app, self.scenario, self.options, self.base_url = app, scenario, options, base_url
        self.marketing: Marketing = build_marketing(scenario)

    def connector(self) -> SalesforceConnector:
        settings = SalesforceSettings.model_validate(PLUGIN.sandbox_settings(self.base_url, self.options))
        return SalesforceConnector(
            settings, SecretResolver(PLUGIN.sandbox_secrets(self.options)), ConnectorContext(CONNECTION, ())
        )

    def sf_id(self, key: str) -> str:
        return sandbox_state(self.app).ids[key]


@pytest.fixture
def org() -> Iterator[Org]:
    options = SandboxOptions(accounts=30, seed=4)
    scenario = build_scenario(accounts=30, seed=4)
    app = create_app(scenario, options)
    with SandboxServer(app) as base_url:
        yield Org(app, scenario, options, base_url)


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _features(engine: sa.Engine, now: datetime) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        return {
            str(r["account_id"]): r for r in compute_features(conn, CONNECTION, now, FeaturesConfig(), [])
        }


def _stream_queries(connector: SalesforceConnector) -> int:
    """Query calls over the streams' sObjects (the token and the currency settings left out)."""
    objects = set(SOBJECTS.values())
    return sum(
        n
        for endpoint, n in connector.stats.by_endpoint.items()
        if endpoint.startswith(("GET query ", "GET queryAll ")) and endpoint.split()[-1] in objects
    )


def _members(org: Org, contact_keys: set[str]) -> list[SCampaignMember]:
    return [m for m in org.marketing.members if m.contact_key in contact_keys]


async def test_engagement_features_equal_hand_counts_and_cost_no_extra_call(
    org: Org, engine: sa.Engine
) -> None:
    connector = org.connector()
    try:
        await connector.ensure_fields(ALL_FIELDS)  # as the benchmark does: the product's fields exist
        start = _stream_queries(connector)
        report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
        assert not report.failed
        # bench/README.md: ceil(N / 2000) query calls per stream, CampaignMember included (the org's
        # currency settings are read once per run besides, whatever the size).
        minimum = sum(max(1, math.ceil(s.records / 2000)) for s in report.streams.values())
        assert _stream_queries(connector) - start == minimum
        assert report.streams["campaign_members"].records == len(org.marketing.members)
        before = _stream_queries(connector)
        await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
        assert _stream_queries(connector) - before == len(connector.streams)
    finally:
        await connector.close()

    now = org.scenario.now
    rows = _features(engine, now)
    seen: set[str] = set()
    for company in org.scenario.companies:
        kind = org.marketing.kinds[company.key]
        contacts = {c.key for c in org.scenario.contacts if c.company_key == company.key}
        if kind in seen or len(contacts) < 2:
            continue
        seen.add(kind)
        got = rows[org.sf_id(company.key)]
        members = _members(org, contacts)
        recent = [
            m
            for m in members
            if m.responded_at is not None and now - timedelta(days=90) <= m.responded_at <= now
        ]
        assert got["campaign_responses_90d"] == len(recent), kind
        assert got["engaged_contacts_share_90d"] == pytest.approx(
            len({m.contact_key for m in recent}) / len(contacts)
        ), kind
        answered = [m.responded_at for m in members if m.responded_at is not None]
        expected_days = math.floor((now - max(answered)).total_seconds() / 86400) if answered else None
        assert got["days_since_last_engagement"] == expected_days, kind
        unsubscribed = sum(org.marketing.engagement[k].unsubscribed for k in contacts)
        assert got["unsubscribed_share"] == pytest.approx(unsubscribed / len(contacts)), kind
        assert got["email_opens_total"] is None and got["email_opens_90d"] is None  # Salesforce keeps none
    assert seen == {"engaged", "disengaged", "mixed"}


async def test_an_org_without_campaigns_syncs_and_leaves_responses_missing(
    org: Org, engine: sa.Engine
) -> None:
    state = sandbox_state(org.app)
    del state.schema["CampaignMember"]  # as in an org without the object (INVALID_TYPE)
    connector = org.connector()
    try:
        report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
    finally:
        await connector.close()
    assert not report.failed
    assert report.streams["campaign_members"].records == 0
    row = next(iter(_features(engine, org.scenario.now).values()))
    assert row["campaign_responses_90d"] is None
    assert row["unsubscribed_share"] is not None
