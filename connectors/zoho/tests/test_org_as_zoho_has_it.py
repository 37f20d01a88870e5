"""Zoho CRM as a standard org has it (issue 11): field setup, owned products, notes, triggers, tokens,
and the Zoho side of home currency, whole note bodies and merges (issue 13); all over HTTP against the
sandbox, which refuses what Zoho refuses."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from crm_upsell_zoho.auth import ZohoOAuth
from crm_upsell_zoho.connector import ZohoConnector, ZohoPlugin
from crm_upsell_zoho.sandbox import create_app, sandbox_state, set_fields, zoho_id
from crm_upsell_zoho.settings import ZohoSettings

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.fields import ACCOUNT_FIELDS, ALL_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.models import Account, Activity, Deal, FieldSpec, FieldUpdate, LineItem, TaskDraft
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

PLUGIN = ZohoPlugin()
SETTINGS_FIELDS = "POST /crm/v8/settings/fields"


class Org:
    def __init__(self, accounts: int = 10) -> None:
        self.options = SandboxOptions(accounts=accounts, seed=5)
        self.scenario: Scenario = build_scenario(accounts=accounts, seed=5)
        self.app = create_app(self.scenario, self.options)
        self.server = SandboxServer(self.app)
        self.base_url = ""

    @property
    def sb(self) -> Any:
        return sandbox_state(self.app)

    def connector(self, **overrides: object) -> ZohoConnector:
        values = {**PLUGIN.sandbox_settings(self.base_url, self.options), **overrides}
        return ZohoConnector(
            ZohoSettings.model_validate(values),
            SecretResolver(PLUGIN.sandbox_secrets(self.options)),
            ConnectorContext("sbx", ()),
        )

    def raw(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Zoho-oauthtoken {self.options.token}"}
        )

    def posts(self) -> int:
        return int(self.sb.runtime.stats.snapshot()["by_route"].get(SETTINGS_FIELDS, 0))


@pytest.fixture
def org() -> Iterator[Org]:
    o = Org()
    with o.server as base_url:
        o.base_url = base_url
        yield o


@pytest.fixture
async def conn(org: Org) -> AsyncIterator[ZohoConnector]:
    c = org.connector()
    yield c
    await c.close()


async def read(conn: ZohoConnector, stream: str, since: datetime | None = None) -> list[Any]:
    return [r for page in [p async for p in conn.read(stream, since)] for r in page.records]


# ---- field setup ----------------------------------------------------------------------------------


async def test_setup_splits_six_fields_into_calls_within_the_limit_and_a_second_setup_changes_nothing(
    org: Org, conn: ZohoConnector
) -> None:
    assert len(ACCOUNT_FIELDS) == 6
    created = await conn.ensure_fields(ALL_FIELDS)
    assert len(created) == 7
    # Six account fields: five in one call, one in the next; the task key on Tasks: a third call.
    assert org.posts() == 3
    assert await conn.ensure_fields(ALL_FIELDS) == []
    assert org.posts() == 3  # nothing sent the second time
    checks = {c.item: c for c in await conn.check()}
    assert checks["fields on Accounts"].ok and checks["fields on Tasks"].ok


async def test_a_setup_cut_short_creates_only_what_is_still_missing(org: Org, conn: ZohoConnector) -> None:
    first = await conn.ensure_fields(ACCOUNT_FIELDS[:3])
    assert len(first) == 3
    checks = {c.item: c for c in await conn.check()}
    assert not checks["fields on Accounts"].ok
    assert "Upsell: reason" in checks["fields on Accounts"].detail  # the missing ones are named
    rest = await conn.ensure_fields(ALL_FIELDS)
    assert sorted(rest) == ["Upsell_expected_uplift", "Upsell_reason", "Upsell_task_key", "Upsell_updated_at"]


async def test_the_sandbox_refuses_field_requests_zoho_refuses(org: Org) -> None:
    def field(label: str, **extra: Any) -> dict[str, Any]:
        return {"field_label": label, "data_type": "text", "length": 100, **extra}

    async with org.raw() as http:
        url = "/crm/v8/settings/fields"
        six = await http.post(
            url, params={"module": "Accounts"}, json={"fields": [field(f"F{i}") for i in range(6)]}
        )
        assert six.status_code == 400 and six.json()["code"] == "LIMIT_EXCEEDED"
        bad = await http.post(
            url,
            params={"module": "Accounts"},
            json={
                "fields": [
                    field("A label longer than twenty-five"),
                    field("Tip", tooltip={"name": "static_text", "value": "x" * 256}),
                    field("Long", length=256),
                    field("Tip only name", tooltip={"name": "static_text"}),
                    field("Fine"),
                ]
            },
        )
    assert bad.status_code == 207
    results = bad.json()["fields"]
    assert [r["status"] for r in results] == ["error", "error", "error", "error", "success"]
    assert results[0]["details"]["api_name"] == "field_label"
    assert results[1]["details"]["maximum_length"] == 255
    assert results[2]["details"]["api_name"] == "length"
    assert results[3]["code"] == "MANDATORY_NOT_FOUND"


SEGMENT = FieldSpec(
    name="segment",
    label="Upsell: segment",
    type="enumeration",
    description="Cell of the loyalty x utilization matrix",
    options=("champion", "at_risk"),
    option_labels=("Champion", "At risk"),
)


async def test_the_segment_is_a_picklist_reps_see_with_display_values(org: Org, conn: ZohoConnector) -> None:
    assert await conn.ensure_fields([SEGMENT]) == ["Upsell_segment"]
    async with org.raw() as http:
        fields = (await http.get("/crm/v8/settings/fields", params={"module": "Accounts"})).json()["fields"]
    (segment,) = [f for f in fields if f["api_name"] == "Upsell_segment"]
    assert segment["data_type"] == "picklist"
    assert [(v["display_value"], v["actual_value"]) for v in segment["pick_list_values"]] == [
        ("Champion", "champion"),
        ("At risk", "at_risk"),
    ]
    account = str(org.sb.org.tables["Accounts"].by_id[0])
    (result,) = await conn.update_accounts([FieldUpdate(account_id=account, values={"segment": "at_risk"})])
    assert result.ok


async def test_a_segment_an_earlier_version_made_as_text_is_reported_with_what_the_admin_does(
    org: Org, conn: ZohoConnector
) -> None:
    old = SEGMENT.model_copy(update={"type": "string", "options": (), "option_labels": ()})
    await conn.ensure_fields([old])
    posts = org.posts()
    with pytest.raises(ConfigError) as caught:
        await conn.ensure_fields([SEGMENT, ACCOUNT_FIELDS[0]])
    message = caught.value.one_line()
    assert "'Upsell: segment' is a Single Line field but must be a Pick List field" in message
    assert "delete 'Upsell: segment'" in message and "crm-upsell setup" in message
    assert org.posts() == posts + 1  # the other missing field was still created
    checks = {c.item: c for c in await conn.check()}
    assert not checks["fields on Accounts"].ok


# ---- what an account owns -------------------------------------------------------------------------


def _expected_tiers(scenario: Scenario, catalogue: dict[str, tuple[str, int]]) -> dict[str, dict[str, float]]:
    """Per company: family -> tier of the latest won deal's product in that family (top tier on a tie)."""
    products = {p.key: p.sku for p in scenario.products}
    deals = {d.key: d for d in scenario.deals if d.stage == "closedwon"}
    best: dict[str, dict[str, tuple[date, int]]] = {}
    for item in scenario.line_items:
        deal = deals.get(item.deal_key)
        sku = products[item.product_key]
        if deal is None or sku not in catalogue:
            continue
        family, tier = catalogue[sku]
        mine = best.setdefault(deal.company_key, {})
        candidate = (deal.close_date.astimezone(UTC).date(), tier)
        if family not in mine or candidate > mine[family]:
            mine[family] = candidate
    return {key: {fam: float(v[1]) for fam, v in fams.items()} for key, fams in best.items()}


async def test_the_demo_proposes_from_owned_products_read_from_the_deals_products_related_list() -> None:
    options = SandboxOptions(accounts=40, seed=11)
    scenario = build_scenario(accounts=40, seed=11)
    app = create_app(scenario, options)
    with SandboxServer(app) as base_url, tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            sandbox_config(PLUGIN, base_url, options, "sqlite:///" + str(Path(tmp) / "s.sqlite3")), "test"
        )
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=PLUGIN.sandbox_secrets(options))
        )
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)
            await session.sync(connector)
            assert connector.stats.by_endpoint.get("GET Deals/{id}/Products", 0) > 0
        rules = session.rules
        catalogue = {p.sku: (p.family, p.tier) for p in rules.products}
        with session.engine.connect() as db:
            rows = {
                r["account_id"]: r
                for r in compute_features(db, "demo", session.clock(), rules.features, rules.products)
            }
        recs = session.score()
        session.engine.dispose()
    expected = _expected_tiers(scenario, catalogue)
    ids = {c.key: zoho_id(app, c.key) for c in scenario.companies}
    owning = [key for key in expected if expected[key]]
    assert len(owning) >= 5
    for key in owning:
        assert dict(rows[ids[key]]["owned_tiers"]) == expected[key], key
    # Proposals are made, and they build on what the account owns.
    proposed = [r for r in recs if r.proposal is not None]
    assert proposed
    assert any(rows[r.account_id]["owned_families"] for r in proposed)


# ---- notes ------------------------------------------------------------------------------------------


async def test_notes_changed_since_the_cursor_are_read_and_unchanged_ones_are_not(
    org: Org, conn: ZohoConnector
) -> None:
    notes = await read(conn, "notes")
    assert len(notes) == len(org.sb.org.tables["Notes"].by_id) > 2
    assert all(isinstance(n, Activity) and n.account_id for n in notes)
    cursor = max(n.updated_at for n in notes) + timedelta(milliseconds=1)
    org.sb.runtime.clock.advance(5)
    changed = [str(i) for i in org.sb.org.tables["Notes"].by_id[:2]]
    for note_id in changed:
        set_fields(org.app, "Notes", note_id, {"Note_Title": "Renewal call follow-up"})
    before = conn.stats.by_endpoint.get("GET Notes", 0)
    again = await read(conn, "notes", cursor)
    assert sorted(n.id for n in again) == sorted(changed)
    assert all(n.subject == "Renewal call follow-up" for n in again)
    assert conn.stats.by_endpoint.get("GET Notes", 0) - before == 1
    # From just after them: only what shares their (whole) second is shown again, nothing older.
    after = await read(conn, "notes", max(n.updated_at for n in again) + timedelta(milliseconds=1))
    assert {n.id for n in after} <= set(changed)


async def test_the_sandbox_ignores_if_modified_since_on_notes_and_refuses_se_module(org: Org) -> None:
    async with org.raw() as http:
        future = {"If-Modified-Since": "2100-01-01T00:00:00+00:00"}
        listed = await http.get("/crm/v8/Notes", params={"fields": "Note_Title"}, headers=future)
        assert listed.status_code == 200  # the header is not documented for GET /Notes: ignored
        refused = await http.get("/crm/v8/Notes", params={"fields": "Note_Title,$se_module"})
        assert refused.status_code == 400 and refused.json()["details"]["api_name"] == "$se_module"
        parent = (await http.get("/crm/v8/Notes", params={"fields": "Parent_Id"})).json()["data"][0][
            "Parent_Id"
        ]
        assert parent["module"]["api_name"] == "Accounts"


async def test_a_profile_refused_the_notes_list_skips_the_stream_with_one_warning(
    org: Org, conn: ZohoConnector, caplog: pytest.LogCaptureFixture
) -> None:
    org.sb.notes_listable = False
    with caplog.at_level(logging.WARNING):
        assert await read(conn, "notes") == []
    warnings = [r for r in caplog.records if "notes stream is skipped" in r.getMessage()]
    assert len(warnings) == 1 and "view all notes" in warnings[0].getMessage()
    assert await read(conn, "calls")  # the rest reads on
    checks = {c.item: c for c in await conn.check()}
    assert not checks["read Notes"].ok and "view all notes" in checks["read Notes"].detail


async def test_note_bodies_are_whole_plain_text_from_zoho_rich_text(org: Org, conn: ZohoConnector) -> None:
    note_id = str(org.sb.org.tables["Notes"].by_id[0])
    html = "<div>Renewal went fine.</div><div>They are unhappy with support.<br>Wants a discount.</div>"
    set_fields(org.app, "Notes", note_id, {"Note_Content": html})
    (note,) = [n for n in await read(conn, "notes") if n.id == note_id]
    assert "unhappy with support" in note.body and "Wants a discount." in note.body
    assert "<" not in note.body
    assert note.body.index("Renewal") < note.body.index("unhappy") < note.body.index("discount")


# ---- workflows ------------------------------------------------------------------------------------


async def test_no_write_goes_without_trigger_and_none_fires_by_default(org: Org, conn: ZohoConnector) -> None:
    await conn.ensure_fields(ALL_FIELDS)
    accounts = [str(i) for i in org.sb.org.tables["Accounts"].by_id[:3]]
    results = await conn.update_accounts(
        [FieldUpdate(account_id=a, values={"loyalty_score": "71"}) for a in accounts]
    )
    assert all(r.ok for r in results)
    owner = str(org.sb.org.admin.id)
    draft = TaskDraft(
        key="k-1",
        account_id=accounts[0],
        owner_id=owner,
        subject="Call",
        body="b",
        due=date(2026, 12, 1),
        priority="high",
    )
    assert (await conn.create_tasks([draft]))[0].ok
    assert org.sb.writes_without_trigger == 0
    assert sum(org.sb.triggers_fired.values()) == 0
    chatty = org.connector(account_update_triggers=["workflow"])
    try:
        await chatty.ensure_fields(ALL_FIELDS)
        await chatty.update_accounts([FieldUpdate(account_id=accounts[0], values={"loyalty_score": "72"})])
    finally:
        await chatty.close()
    assert org.sb.triggers_fired == {"workflow": 1}
    assert org.sb.writes_without_trigger == 0


# ---- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 3600},  # current: seconds
        {"expires_in": 3_600_000, "expires_in_sec": 3600},  # older: milliseconds beside seconds
    ],
)
@respx.mock
async def test_token_lifetimes_in_seconds_and_in_milliseconds_are_both_read(body: dict[str, Any]) -> None:
    respx.post("https://accounts.zoho.eu/oauth/v2/token").mock(
        return_value=httpx.Response(
            200, json={"access_token": "1000.a.b", "api_domain": "https://www.zohoapis.eu", **body}
        )
    )
    auth = ZohoOAuth(
        token_url="https://accounts.zoho.eu/oauth/v2/token",
        client_id="1000.X",
        client_secret="secret-value-1",
        refresh_token="refresh-value-1",
    )
    try:
        token = await auth.current()
    finally:
        await auth.aclose()
    assert 3000 < token.expires_at - time.time() <= 3600


# ---- issue 13: home currency, merges ------------------------------------------------------------------


async def test_deals_in_another_currency_carry_their_home_amount(org: Org, conn: ZohoConnector) -> None:
    assert await conn.home_currency() == "USD"
    deals = {d.id: d for d in await read(conn, "deals") if isinstance(d, Deal)}
    by_key = {zoho_id(org.app, d.key): d for d in org.scenario.deals}
    foreign = [d for d in deals.values() if d.currency not in (None, "USD")]
    assert foreign  # this small org has a few (see test_sandbox_currencies for yen and euros)
    for deal in foreign:
        scenario_deal = by_key[deal.id]
        assert (deal.amount, deal.currency) == (scenario_deal.amount, scenario_deal.currency)
        assert deal.amount_home == pytest.approx(scenario_deal.amount_home, abs=0.51)
        assert deal.amount != deal.amount_home
    home = [d for d in deals.values() if d.currency == "USD"]
    assert home and all(d.amount_home == d.amount for d in home)
    items = [i for i in await read(conn, "line_items") if isinstance(i, LineItem)]
    assert items and all(i.amount_home == i.amount for i in items)  # catalogue prices: home currency


async def test_a_merged_away_account_reaches_the_store_as_deleted_and_a_write_to_it_is_gone(
    org: Org, conn: ZohoConnector
) -> None:
    await conn.ensure_fields(ALL_FIELDS)
    master, duplicate = (str(i) for i in org.sb.org.tables["Accounts"].by_id[:2])
    since = datetime.now(UTC) - timedelta(days=1)
    dup_deals = {d.id for d in await read(conn, "deals") if isinstance(d, Deal) and d.account_id == duplicate}
    async with org.raw() as http:
        merged = await http.post(
            f"/crm/v8/Accounts/{master}/actions/merge",
            json={"merge": [{"data": [{"id": duplicate}], "master_record_fields": []}]},
        )
    assert merged.status_code == 200 and merged.json()["merge"][0]["code"] == "SUCCESS"
    gone = [i for p in [p async for p in conn.read_deleted("accounts", since)] for i in p.deleted_ids]
    assert duplicate in gone
    moved = {d.id: d for d in await read(conn, "deals") if isinstance(d, Deal)}
    assert all(moved[i].account_id == master for i in dup_deals)
    (result,) = await conn.update_accounts([FieldUpdate(account_id=duplicate, values={"loyalty_score": "5"})])
    assert result.gone and not result.ok
    assert TASK_KEY_FIELD.name == "key"


async def test_the_related_list_answers_as_zoho_does(org: Org) -> None:
    deal = next(d for d, products in org.sb.org.deal_products.items() if products)
    async with org.raw() as http:
        ok = await http.get(f"/crm/v8/Deals/{deal}/Products", params={"fields": "Product_Name,Product_Code"})
        assert ok.status_code == 200 and all(r["Product_Code"] for r in ok.json()["data"])
        no_fields = await http.get(f"/crm/v8/Deals/{deal}/Products")
        assert no_fields.status_code == 400 and no_fields.json()["code"] == "REQUIRED_PARAM_MISSING"
        unknown_list = await http.get(f"/crm/v8/Deals/{deal}/Widgets", params={"fields": "id"})
        assert unknown_list.status_code == 400 and unknown_list.json()["details"]["resource_path_index"] == 2
        unknown_deal = await http.get("/crm/v8/Deals/1/Products", params={"fields": "Product_Name"})
        assert unknown_deal.status_code == 400 and unknown_deal.json()["details"]["resource_path_index"] == 1
        no_tier = await http.get(f"/crm/v8/Deals/{deal}/Products", params={"fields": "Tier"})
        assert no_tier.status_code == 400  # a standard org's Products have no Tier field


def test_a_segment_read_back_as_its_display_value_is_the_value_written() -> None:
    from crm_upsell_zoho.mapping import MappingOptions, map_records

    options = MappingOptions(
        product_fields={"segment": "Upsell_segment"},
        product_value_aliases={"segment": {"At risk": "at_risk"}},
    )
    raw = {
        "id": "1",
        "Account_Name": "A",
        "Modified_Time": "2026-03-01T10:20:30+09:00",
        "Upsell_segment": "At risk",
    }
    (account,) = map_records("accounts", [raw], options)
    assert isinstance(account, Account) and account.product_fields == {"segment": "at_risk"}
