"""The HubSpot sandbox over real HTTP on loopback: shapes, paging, search, batches, limits, auth and faults."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from crm_upsell_hubspot.sandbox import archive, create_app, hubspot_id, sandbox_state, touch
from starlette.applications import Starlette

from crm_upsell_connector.sandbox import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxOptions, SandboxServer

AUTH = {"Authorization": "Bearer sandbox-token"}


@dataclass
class Sandbox:
    app: Starlette
    url: str
    scenario: Scenario


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(50, seed=3)


def start(scenario: Scenario, **options: Any) -> Iterator[Sandbox]:
    opts = SandboxOptions(accounts=50, search_rate_limit_max=10_000, **options)
    app = create_app(scenario, opts)
    with SandboxServer(app) as url:
        yield Sandbox(app, url, scenario)


@pytest.fixture
def sandbox(scenario: Scenario) -> Iterator[Sandbox]:
    yield from start(scenario)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as c:
        yield c


async def test_paging_through_all_companies(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 7, "properties": "name,nps_score,onboarding_stage"}
    pages = 0
    while True:
        r = await client.get("/crm/v3/objects/companies", params=params)
        assert r.status_code == 200
        body = r.json()
        pages += 1
        for rec in body["results"]:
            assert rec["id"].isdigit()
            assert set(rec["properties"]) == {
                "name",
                "nps_score",
                "onboarding_stage",
                "hs_object_id",
                "createdate",
                "hs_lastmodifieddate",
            }
            assert rec["createdAt"].endswith("Z")
            assert len(rec["createdAt"]) == 24
            assert rec["archived"] is False
            seen.append(rec["id"])
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            break
        assert nxt["link"].startswith(sandbox.url)
        params["after"] = nxt["after"]
    assert pages == 8
    assert len(seen) == len(set(seen)) == 50
    assert seen == sorted(seen, key=int)
    first = sandbox.scenario.companies[0]
    assert seen[0] == hubspot_id(sandbox.app, first.key)


async def test_default_properties_and_string_values(client: httpx.AsyncClient) -> None:
    r = await client.get("/crm/v3/objects/deals", params={"limit": 3})
    props = r.json()["results"][0]["properties"]
    assert set(props) == {
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    }
    r = await client.get(
        "/crm/v3/objects/deals", params={"limit": 100, "properties": "hs_is_closed_won,amount"}
    )
    values = {rec["properties"]["hs_is_closed_won"] for rec in r.json()["results"]}
    assert values <= {"true", "false"}
    assert all(isinstance(rec["properties"]["amount"], str) for rec in r.json()["results"])


async def test_inline_associations(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sc = sandbox.scenario
    company = sc.companies[0]
    company_id = hubspot_id(sandbox.app, company.key)
    r = await client.get(
        "/crm/v3/objects/companies", params={"limit": 1, "associations": "contacts,deals,calls"}
    )
    rec = r.json()["results"][0]
    assert rec["id"] == company_id
    contact_ids = {a["id"] for a in rec["associations"]["contacts"]["results"]}
    expected = {hubspot_id(sandbox.app, c.key) for c in sc.contacts if c.company_key == company.key}
    assert contact_ids == expected
    assert {a["type"] for a in rec["associations"]["contacts"]["results"]} == {
        "company_to_contact",
        "company_to_contact_unlabeled",
    }
    r = await client.get("/crm/v3/objects/line_items", params={"limit": 5, "associations": "deals"})
    for item in r.json()["results"]:
        assert [a["type"] for a in item["associations"]["deals"]["results"]] == ["line_item_to_deal"]


async def test_search_gte_sorted_by_modified_with_ties_by_id(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    touched = touch(sandbox.app, "companies", count=5)  # five records share one millisecond
    r = await client.get("/crm/v3/objects/companies", params={"limit": 100})
    stamps = sorted(rec["updatedAt"] for rec in r.json()["results"])
    since = stamps[20]
    query = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["name"],
        "limit": 7,
    }
    got: list[tuple[str, int]] = []
    total = None
    while True:
        r = await client.post("/crm/v3/objects/companies/search", json=query)
        assert r.status_code == 200
        assert "X-HubSpot-RateLimit-Remaining" not in r.headers  # search responses carry no limit headers
        body = r.json()
        total = body["total"]
        assert "associations" not in body["results"][0]
        got += [(rec["properties"]["hs_lastmodifieddate"], int(rec["id"])) for rec in body["results"]]
        if "paging" not in body:
            break
        query["after"] = body["paging"]["next"]["after"]
    assert total == len(got) == sum(1 for s in stamps if s >= since)
    assert got == sorted(got)
    assert all(stamp >= since for stamp, _ in got)
    assert [str(i) for _, i in got[-5:]] == sorted(touched, key=int)
    # epoch milliseconds work as filter values too, and GT excludes the boundary
    last_ms = str(sandbox_state(sandbox.app).tables["companies"].modified[-1][0])
    gt = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": last_ms}]}
        ]
    }
    r = await client.post("/crm/v3/objects/companies/search", json=gt)
    assert r.json()["total"] == 0


async def test_search_other_operators(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    async def total(filters: list[dict[str, Any]]) -> int:
        r = await client.post(
            "/crm/v3/objects/companies/search", json={"filterGroups": [{"filters": filters}]}
        )
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    companies = sandbox.scenario.companies
    assert await total([{"propertyName": "nps_score", "operator": "GTE", "value": "9"}]) == sum(
        1 for c in companies if c.nps_score is not None and c.nps_score >= 9
    )
    assert await total(
        [{"propertyName": "onboarding_stage", "operator": "IN", "values": ["kickoff"]}]
    ) == sum(1 for c in companies if c.onboarding_stage == "kickoff")
    assert await total([{"propertyName": "nps_score", "operator": "HAS_PROPERTY"}]) == sum(
        1 for c in companies if c.nps_score is not None
    )
    assert await total([{"propertyName": "do_not_contact", "operator": "NEQ", "value": "true"}]) == sum(
        1 for c in companies if not c.do_not_contact
    )
    r = await client.post(
        "/crm/v3/objects/calls/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "hs_call_title", "operator": "CONTAINS_TOKEN", "value": "complaint*"}
                    ]
                }
            ]
        },
    )
    assert r.json()["total"] == sum(
        1 for a in sandbox.scenario.activities if a.kind == "call" and a.subject.startswith("Complaint:")
    )
    r = await client.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "no_such_property", "operator": "EQ", "value": "1"}]}
            ]
        },
    )
    assert r.status_code == 400


async def test_search_cap_returns_400(scenario: Scenario) -> None:
    for sb in start(scenario, search_cap=30):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as client:
            ok = await client.post("/crm/v3/objects/companies/search", json={"limit": 10, "after": "20"})
            assert ok.status_code == 200
            assert ok.json()["total"] == 50
            assert ok.json()["paging"]["next"]["after"] == "30"  # HubSpot still offers the next page...
            r = await client.post("/crm/v3/objects/companies/search", json={"limit": 10, "after": "30"})
            assert r.status_code == 400  # ...but refuses it
            body = r.json()
            assert body["status"] == "error"
            assert body["category"] == "VALIDATION_ERROR"
            assert body["correlationId"]
            r = await client.post("/crm/v3/objects/companies/search", json={"limit": 201})
            assert r.status_code == 400


async def test_batch_cap_and_unknown_property(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    cid = hubspot_id(sandbox.app, sandbox.scenario.companies[0].key)
    too_many = {"inputs": [{"id": cid, "properties": {"nps_score": "1"}} for _ in range(101)]}
    r = await client.post("/crm/v3/objects/companies/batch/update", json=too_many)
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR"
    r = await client.post(
        "/crm/v3/objects/companies/batch/update",
        json={"inputs": [{"id": cid, "properties": {"crm_upsell_score": "80"}}]},
    )
    assert r.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in r.json()["message"]
    assert r.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    r = await client.post(
        "/crm/v3/objects/companies/batch/update",
        json={"inputs": [{"id": cid, "properties": {"onboarding_stage": "bogus"}}]},
    )
    assert r.status_code == 400


async def test_batch_update_partial_failure_is_207(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    ids = [hubspot_id(sandbox.app, c.key) for c in sandbox.scenario.companies[:3]]
    before = (await client.get(f"/crm/v3/objects/companies/{ids[0]}")).json()["updatedAt"]
    inputs = [{"id": i, "properties": {"nps_score": "10"}} for i in ids] + [
        {"id": "999", "properties": {"nps_score": "10"}}
    ]
    r = await client.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs})
    assert r.status_code == 207
    body = r.json()
    assert body["status"] == "COMPLETE"
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999"]
    assert sorted(rec["id"] for rec in body["results"]) == sorted(ids)
    after = (
        await client.get(f"/crm/v3/objects/companies/{ids[0]}", params={"properties": "nps_score"})
    ).json()
    assert after["properties"]["nps_score"] == "10"
    assert after["updatedAt"] >= before


async def test_injected_partial_batch_failures(scenario: Scenario) -> None:
    for sb in start(scenario, faults=FaultOptions(partial_batch_rate=0.5, seed=1)):
        ids = [hubspot_id(sb.app, c.key) for c in scenario.companies[:20]]
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as client:
            r = await client.post(
                "/crm/v3/objects/companies/batch/update",
                json={"inputs": [{"id": i, "properties": {"seats_active": "3"}} for i in ids]},
            )
            assert r.status_code == 207
            body = r.json()
            failed = [i for e in body["errors"] for i in e["context"]["ids"]]
            assert failed
            assert len(failed) + len(body["results"]) == 20
            assert {e["category"] for e in body["errors"]} == {"INTERNAL_ERROR"}


async def test_tasks_create_search_by_custom_key_and_associate(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    r = await client.post(
        "/crm/v3/properties/tasks",
        json={
            "name": "crm_upsell_key",
            "label": "Upsell key",
            "type": "string",
            "fieldType": "text",
            "groupName": "taskinformation",
        },
    )
    assert r.status_code == 201
    cid = hubspot_id(sandbox.app, sandbox.scenario.companies[1].key)
    inputs = [
        {
            "properties": {
                "hs_timestamp": "2026-12-01T09:00:00Z",
                "hs_task_subject": f"Propose upgrade {n}",
                "hs_task_body": "Because.",
                "hs_task_priority": "HIGH",
                "hs_task_status": "NOT_STARTED",
                "crm_upsell_key": f"key-{n}",
            },
            "associations": [
                {
                    "to": {"id": cid},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ],
            "objectWriteTraceId": f"key-{n}",
        }
        for n in range(3)
    ]
    r = await client.post("/crm/v3/objects/tasks/batch/create", json={"inputs": inputs})
    assert r.status_code == 201
    created = {rec["properties"]["crm_upsell_key"]: rec["id"] for rec in r.json()["results"]}
    assert set(created) == {"key-0", "key-1", "key-2"}
    assert {rec["objectWriteTraceId"] for rec in r.json()["results"]} == set(created)
    r = await client.post(
        "/crm/v3/objects/tasks/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "crm_upsell_key",
                            "operator": "IN",
                            "values": ["key-0", "key-2", "key-9"],
                        }
                    ]
                }
            ],
            "properties": ["crm_upsell_key", "hs_task_status"],
        },
    )
    found = {rec["properties"]["crm_upsell_key"]: rec["id"] for rec in r.json()["results"]}
    assert found == {"key-0": created["key-0"], "key-2": created["key-2"]}
    r = await client.post(
        "/crm/v4/associations/tasks/companies/batch/read", json={"inputs": [{"id": created["key-1"]}]}
    )
    assert r.status_code == 200
    to = r.json()["results"][0]["to"]
    assert to == [
        {
            "toObjectId": cid,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 192, "label": None}],
        }
    ]
    r = await client.post("/crm/v4/associations/companies/tasks/batch/read", json={"inputs": [{"id": cid}]})
    assert created["key-1"] in {t["toObjectId"] for t in r.json()["results"][0]["to"]}
    # a task without hs_timestamp is refused, like HubSpot does
    r = await client.post(
        "/crm/v3/objects/tasks/batch/create", json={"inputs": [{"properties": {"hs_task_subject": "x"}}]}
    )
    assert r.status_code == 400


async def test_rate_limit_headers_then_429(scenario: Scenario) -> None:
    for sb in start(scenario, rate_limit_max=5):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as client:
            remaining = []
            for _ in range(5):
                r = await client.get("/crm/v3/objects/companies", params={"limit": 1})
                assert r.status_code == 200
                assert r.headers["X-HubSpot-RateLimit-Max"] == "5"
                assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
                assert int(r.headers["X-HubSpot-RateLimit-Daily-Remaining"]) > 0
                remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
            assert remaining == [4, 3, 2, 1, 0]
            r = await client.get("/crm/v3/objects/companies")
            assert r.status_code == 429
            body = r.json()
            assert body["status"] == "error"
            assert body["errorType"] == "RATE_LIMIT"
            assert body["policyName"] == "TEN_SECONDLY_ROLLING"
            assert body["message"] == "You have reached your ten_secondly_rolling limit."
            assert body["correlationId"]
            stats = (await client.get("/__sandbox/stats")).json()
            assert stats["rate_limited"] == 1
            assert stats["by_route"]["GET /crm/v3/objects/companies"] == 6
            await client.post("/__sandbox/reset-limits")
            assert (await client.get("/crm/v3/objects/companies")).status_code == 200


async def test_daily_limit(scenario: Scenario) -> None:
    for sb in start(scenario, daily_limit=2):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as client:
            assert (await client.get("/crm/v3/owners")).status_code == 200
            assert (await client.get("/crm/v3/owners")).status_code == 200
            r = await client.get("/crm/v3/owners")
            assert r.status_code == 429
            assert r.json()["policyName"] == "DAILY"


async def test_auth_errors_and_oauth_token_expiry(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        r = await client.get("/crm/v3/objects/companies")
        assert r.status_code == 401
        assert r.json()["category"] == "INVALID_AUTHENTICATION"
        r = await client.get("/crm/v3/objects/companies", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        form = {
            "grant_type": "refresh_token",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
            "refresh_token": "sandbox-refresh-token",
        }
        r = await client.post("/oauth/v1/token", data=form)
        assert r.status_code == 200
        token = r.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == 1800
        assert token["refresh_token"] == "sandbox-refresh-token"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        r = await client.get("/crm/v3/objects/companies", headers=bearer)
        assert r.status_code == 200
        assert "X-HubSpot-RateLimit-Daily" not in r.headers  # OAuth calls carry no daily headers
        await client.post("/__sandbox/clock", json={"advance_s": 1801})
        r = await client.get("/crm/v3/objects/companies", headers=bearer)
        assert r.status_code == 401
        assert r.json()["category"] == "EXPIRED_AUTHENTICATION"
        r = await client.post("/oauth/v1/token", data={**form, "refresh_token": "wrong"})
        assert r.status_code == 400
        assert r.json()["status"] == "BAD_REFRESH_TOKEN"
        fresh = (await client.post("/oauth/v1/token", data=form)).json()["access_token"]
        r = await client.get("/crm/v3/objects/companies", headers={"Authorization": f"Bearer {fresh}"})
        assert r.status_code == 200


async def test_property_creation_is_not_repeatable(client: httpx.AsyncClient) -> None:
    spec = {
        "name": "crm_upsell_score",
        "label": "Upsell score",
        "type": "number",
        "fieldType": "number",
        "groupName": "companyinformation",
    }
    r = await client.post("/crm/v3/properties/companies", json=spec)
    assert r.status_code == 201
    assert r.json()["name"] == "crm_upsell_score"
    assert r.json()["type"] == "number"
    r = await client.post("/crm/v3/properties/companies", json=spec)
    assert r.status_code == 409
    assert r.json()["category"] == "OBJECT_ALREADY_EXISTS"
    r = await client.post(
        "/crm/v3/properties/companies/batch/create",
        json={
            "inputs": [spec, {**spec, "name": "crm_upsell_segment", "type": "string", "fieldType": "text"}]
        },
    )
    assert r.status_code == 207
    assert [p["name"] for p in r.json()["results"]] == ["crm_upsell_segment"]
    assert r.json()["errors"][0]["category"] == "OBJECT_ALREADY_EXISTS"
    names = {p["name"] for p in (await client.get("/crm/v3/properties/companies")).json()["results"]}
    assert {"crm_upsell_score", "crm_upsell_segment", "seats_active", "nps_score", "name"} <= names
    r = await client.post(
        "/crm/v3/properties/companies/groups", json={"name": "crm_upsell", "label": "Upsell"}
    )
    assert r.status_code == 201
    r = await client.post(
        "/crm/v3/properties/companies/groups", json={"name": "crm_upsell", "label": "Upsell"}
    )
    assert r.status_code == 409
    r = await client.post(
        "/crm/v3/objects/companies/batch/update",
        json={
            "inputs": [
                {
                    "id": (await client.get("/crm/v3/objects/companies")).json()["results"][0]["id"],
                    "properties": {"crm_upsell_score": "81"},
                }
            ]
        },
    )
    assert r.status_code == 200
    assert r.json()["results"][0]["properties"]["crm_upsell_score"] == "81"


async def test_archived_records_leave_lists_and_search(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    cid = hubspot_id(sandbox.app, sandbox.scenario.companies[2].key)
    assert archive(sandbox.app, "companies", [cid]) == [cid]
    ids = {
        rec["id"]
        for rec in (await client.get("/crm/v3/objects/companies", params={"limit": 100})).json()["results"]
    }
    assert cid not in ids
    assert len(ids) == 49
    r = await client.get("/crm/v3/objects/companies", params={"archived": "true"})
    gone = r.json()["results"]
    assert [g["id"] for g in gone] == [cid]
    assert gone[0]["archived"] is True
    assert gone[0]["archivedAt"].endswith("Z")
    r = await client.post("/crm/v3/objects/companies/search", json={"limit": 100})
    assert r.json()["total"] == 49
    r = await client.post(f"{sandbox.url}/__sandbox/archive", json={"object_type": "contacts", "count": 2})
    assert len(r.json()["ids"]) == 2


async def test_faults_drop_5xx_and_storms(scenario: Scenario) -> None:
    for sb in start(scenario):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as client:
            await client.post("/__sandbox/faults", json={"drop_rate": 1.0})
            with pytest.raises(httpx.TransportError):
                await client.get("/crm/v3/objects/companies")
            await client.post("/__sandbox/faults", json={"drop_rate": 0.0, "error_rate": 1.0})
            r = await client.get("/crm/v3/objects/companies")
            assert r.status_code in (502, 503)
            await client.post(
                "/__sandbox/faults", json={"error_rate": 0.0, "storm_probability": 1.0, "storm_length": 3}
            )
            statuses = [(await client.get("/crm/v3/owners")).status_code for _ in range(3)]
            assert statuses == [429, 429, 429]
            await client.post("/__sandbox/faults", json={"storm_probability": 0.0})
            assert (await client.get("/crm/v3/owners")).status_code == 200
            stats = (await client.get("/__sandbox/stats")).json()
            assert stats["faults"]["storm"] == 3
            assert stats["faults"]["drop"] == 1


async def test_owners_and_control_routes(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    r = await client.get("/crm/v3/owners", params={"limit": 2})
    body = r.json()
    assert len(body["results"]) == 2
    assert body["paging"]["next"]["after"] == "2"
    owner = body["results"][0]
    assert {"id", "email", "firstName", "lastName", "userId", "archived", "teams"} <= set(owner)
    r = await client.get("/__sandbox/planted")
    planted = r.json()
    assert len(planted) == 50
    assert set(planted.values()) <= {
        "upgrade_candidate",
        "cross_sell_candidate",
        "at_risk",
        "dormant",
        "new_customer",
        "covered",
        "do_not_contact",
        "average",
    }
    cid = hubspot_id(sandbox.app, sandbox.scenario.companies[0].key)
    r = await client.post("/__sandbox/touch", json={"object_type": "companies", "ids": [cid]})
    assert r.json()["ids"] == [cid]
    r = await client.post(
        "/__sandbox/set-property",
        json={"object_type": "companies", "id": cid, "properties": {"nps_score": "2"}},
    )
    assert r.json()["properties"]["nps_score"] == "2"
    await client.post("/__sandbox/reset-stats")
    assert (await client.get("/__sandbox/stats")).json()["total"] == 0
