"""Zoho CRM marketing engagement over real HTTP: campaign members (Contacts related list of each
campaign, ``Member_Status``) and contacts' ``Email_Opt_Out``.

Expected figures are counted here from the scenario's marketing data. Zoho keeps no response date
on a membership: a response counts at its campaign's start date (see ``crm_upsell_zoho.campaigns``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from crm_upsell_zoho.connector import ZohoConnector, ZohoPlugin
from crm_upsell_zoho.sandbox import create_app, zoho_id
from crm_upsell_zoho.settings import ZohoSettings
from starlette.applications import Starlette

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.scenario.marketing import Marketing, build_marketing
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

PLUGIN = ZohoPlugin()
CONNECTION = "zh"


class Org:
    def __init__(self, app: Starlette, scenario: Scenario, options: SandboxOptions, base_url: str) -> None:
        self.app, self.scenario, self.options, self.base_url = app, scenario, options, base_url
        self.marketing: Marketing = build_marketing(scenario)

    def connector(self) -> ZohoConnector:
        settings = ZohoSettings.model_validate(PLUGIN.sandbox_settings(self.base_url, self.options))
        return ZohoConnector(
            settings, SecretResolver(PLUGIN.sandbox_secrets(self.options)), ConnectorContext(CONNECTION, ())
        )


@pytest.fixture
def org() -> Iterator[Org]:
    options = SandboxOptions(accounts=30, seed=6)
    scenario = build_scenario(accounts=30, seed=6)
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


async def test_engagement_features_equal_hand_counts(org: Org, engine: sa.Engine) -> None:
    connector = org.connector()
    try:
        await connector.ensure_fields(ALL_FIELDS)
        report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
        assert not report.failed
        assert report.streams["campaign_members"].records == len(org.marketing.members)
        # Calls grow with campaigns, not contacts: one campaigns page, one member page per campaign.
        used = connector.stats.by_endpoint
        assert used["GET Campaigns"] == 1
        assert used["GET Campaigns/{id}/Contacts"] == len(org.marketing.campaigns)
        before = connector.stats.calls
        members_before = used["GET Campaigns/{id}/Contacts"]
        await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
        # Nothing changed: at most one call per stream (bench/README.md); no campaign's members again.
        assert connector.stats.calls - before <= len(connector.streams)
        assert connector.stats.by_endpoint["GET Campaigns"] == 2
        assert connector.stats.by_endpoint["GET Campaigns/{id}/Contacts"] == members_before
    finally:
        await connector.close()

    now = org.scenario.now
    starts = {c.key: c.start for c in org.marketing.campaigns}
    rows = _features(engine, now)
    seen: set[str] = set()
    for company in org.scenario.companies:
        kind = org.marketing.kinds[company.key]
        contacts = {c.key for c in org.scenario.contacts if c.company_key == company.key}
        if kind in seen or len(contacts) < 2:
            continue
        seen.add(kind)
        got = rows[zoho_id(org.app, company.key)]
        answered = [
            starts[m.campaign_key] for m in org.marketing.members if m.contact_key in contacts and m.responded
        ]
        recent = [t for t in answered if now - timedelta(days=90) <= t <= now]
        assert got["campaign_responses_90d"] == len(recent), kind
        engaged = {
            m.contact_key
            for m in org.marketing.members
            if m.contact_key in contacts
            and m.responded
            and now - timedelta(days=90) <= starts[m.campaign_key]
        }
        assert got["engaged_contacts_share_90d"] == pytest.approx(len(engaged) / len(contacts)), kind
        expected_days = math.floor((now - max(answered)).total_seconds() / 86400) if answered else None
        assert got["days_since_last_engagement"] == expected_days, kind
        unsubscribed = sum(org.marketing.engagement[k].unsubscribed for k in contacts)
        assert got["unsubscribed_share"] == pytest.approx(unsubscribed / len(contacts)), kind
        assert got["email_clicks_total"] is None  # Zoho CRM keeps no e-mail counters on contacts
    assert seen == {"engaged", "disengaged", "mixed"}


async def test_an_org_without_campaigns_syncs_and_leaves_responses_missing(
    org: Org, engine: sa.Engine
) -> None:
    from crm_upsell_zoho.sandbox import sandbox_state

    del sandbox_state(org.app).org.tables["Campaigns"]  # Zoho answers INVALID_MODULE
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
