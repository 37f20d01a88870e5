"""The Zoho CRM sandbox over real HTTP on loopback: OAuth, records paging, deletions, writes, fields, COQL, limits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from crm_upsell_zoho.sandbox import create_app, delete, sandbox_state, touch, zoho_id
from starlette.applications import Starlette

from crm_upsell_connector.sandbox import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer

AUTH = {"Authorization": "Zoho-oauthtoken sandbox-token"}
ZOHO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
REFRESH = {
    "grant_type": "refresh_token",
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "refresh_token": "sandbox-refresh-token",
}


@dataclass
class Sandbox:
    app: Starlette
    url: str
    scenario: Scenario


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(40, seed=3)


def start(scenario: Scenario, app_options: dict[str, Any] | None = None, **options: Any) -> Iterator[Sandbox]:
    app = create_app(scenario, SandboxOptions(accounts=40, **options), **(app_options or {}))
    with SandboxServer(app) as url:
        yield Sandbox(app, url, scenario)


@pytest.fixture
def sandbox(scenario: Scenario) -> Iterator[Sandbox]:
    yield from start(scenario, {"discrete_limit": 50})


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as c:
        yield c


# ---- OAuth ----------------------------------------------------------------------------------------------


async def test_refresh_token_flow_and_expiry(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        bad = await c.post("/oauth/v2/token", data={**REFRESH, "client_id": "nope"})
        assert bad.status_code == 200
        assert bad.json() == {"error": "invalid_client"}
        bad = await c.post("/oauth/v2/token", params={**REFRESH, "refresh_token": "stale"})
        assert bad.json() == {"error": "invalid_code"}

        r = await c.post("/oauth/v2/token", params=REFRESH)
        body = r.json()
        assert r.status_code == 200
        assert body["api_domain"] == sandbox.url
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        headers = {"Authorization": f"Zoho-oauthtoken {body['access_token']}"}
        ok = await c.get(f"{body['api_domain']}/crm/v8/users", params={"type": "AllUsers"}, headers=headers)
        assert ok.status_code == 200

        missing = await c.get("/crm/v8/Accounts", params={"fields": "Account_Name"})
        assert missing.status_code == 401
        assert missing.json()["code"] == "AUTHENTICATION_FAILURE"

        await c.post("/__sandbox/clock", json={"advance_s": 3601})
        expired = await c.get("/crm/v8/Accounts", params={"fields": "Account_Name"}, headers=headers)
        assert expired.status_code == 401
        assert expired.json() == {
            "code": "INVALID_TOKEN",
            "details": {},
            "message": "invalid oauth token",
            "status": "error",
        }

        fresh = (await c.post("/oauth/v2/token", data=REFRESH)).json()["access_token"]
        assert (await c.post("/__sandbox/expire-tokens")).json()["expired"] >= 2
        again = await c.get(
            "/crm/v8/Accounts",
            params={"fields": "Account_Name"},
            headers={"Authorization": f"Zoho-oauthtoken {fresh}"},
        )
        assert again.json()["code"] == "INVALID_TOKEN"


# ---- records --------------------------------------------------------------------------------------------


async def test_fields_param_is_required_and_checked(client: httpx.AsyncClient) -> None:
    r = await client.get("/crm/v8/Accounts")
    assert r.status_code == 400
    assert r.json() == {
        "code": "REQUIRED_PARAM_MISSING",
        "status": "error",
        "details": {"param_name": "fields"},
        "message": "required param is missing",
    }
    r = await client.get("/crm/v8/Accounts", params={"fields": "Account_Name,Nope"})
    assert r.json()["code"] == "INVALID_DATA"
    r = await client.get("/crm/v8/Leads", params={"fields": "Last_Name"})
    assert r.json()["code"] == "INVALID_MODULE"
    r = await client.get("/crm/v8/Accounts", params={"fields": "Account_Name", "per_page": 201})
    assert r.status_code == 400


async def test_pages_through_accounts_with_zoho_shapes(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    seen: list[str] = []
    page = 1
    while True:
        r = await client.get(
            "/crm/v8/Accounts",
            params={
                "fields": "Account_Name,Owner,Seats_Purchased,Do_Not_Contact,Modified_Time",
                "per_page": 15,
                "page": page,
                "sort_by": "id",
                "sort_order": "asc",
            },
        )
        assert r.status_code == 200
        body = r.json()
        for rec in body["data"]:
            assert re.fullmatch(r"\d{19}", rec["id"])
            assert set(rec) == {
                "id",
                "Account_Name",
                "Owner",
                "Seats_Purchased",
                "Do_Not_Contact",
                "Modified_Time",
            }
            assert set(rec["Owner"]) == {"name", "id", "email"}
            assert ZOHO_TIME.match(rec["Modified_Time"])
            seen.append(rec["id"])
        info = body["info"]
        assert info["page"] == page
        assert info["per_page"] == 15
        assert info["count"] == len(body["data"])
        assert info["sort_by"] == "id"
        assert info["sort_order"] == "asc"
        if not info["more_records"]:
            assert info["next_page_token"] is None
            break
        assert info["next_page_token"]
        assert ZOHO_TIME.match(info["page_token_expiry"])
        page += 1
    assert page == 3
    assert seen == sorted(seen, key=int)
    assert len(set(seen)) == 40
    first = sandbox.scenario.companies[0]
    assert zoho_id(sandbox.app, first.key) in seen


async def test_page_tokens_go_past_the_discrete_limit(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    total = len(sandbox_state(sandbox.app).org.tables["Calls"].recs)
    assert total > 50  # discrete_limit is 50 in these tests
    params: dict[str, Any] = {
        "fields": "Subject,Call_Type,What_Id",
        "per_page": 20,
        "sort_by": "Modified_Time",
        "sort_order": "asc",
    }
    r = await client.get("/crm/v8/Calls", params={**params, "page": 3})
    assert r.status_code == 200
    assert r.json()["info"]["count"] == 10  # the page is cut at the 50th record
    r = await client.get("/crm/v8/Calls", params={**params, "page": 4})
    assert r.status_code == 400
    assert r.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    assert r.json()["details"] == {"limit": 50}

    seen: list[str] = []
    stamps: list[str] = []
    token: str | None = None
    while True:
        q: dict[str, Any] = dict(params)
        if token:
            q["page_token"] = token
        r = await client.get("/crm/v8/Calls", params=q)
        assert r.status_code == 200
        body = r.json()
        seen += [rec["id"] for rec in body["data"]]
        stamps += [rec["$se_module"] for rec in body["data"]]
        assert all(rec["What_Id"]["id"] for rec in body["data"])
        if token:
            assert body["info"]["previous_page_token"] == token
        token = body["info"]["next_page_token"]
        if not body["info"]["more_records"]:
            break
    assert len(seen) == len(set(seen)) == total
    assert set(stamps) == {"Accounts"}

    r = await client.get("/crm/v8/Calls", params={"fields": "Subject", "page_token": "deadbeef"})
    assert r.status_code == 400
    first = await client.get("/crm/v8/Calls", params=params)
    tok = first.json()["info"]["next_page_token"]
    r = await client.get("/crm/v8/Tasks", params={"fields": "Subject", "page_token": tok})
    assert r.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    r = await client.get("/crm/v8/Calls", params={**params, "page_token": tok, "page": 2})
    assert r.json()["code"] == "AMBIGUITY_DURING_PROCESSING"


async def test_sort_by_modified_time_and_if_modified_since(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    r = await client.get(
        "/crm/v8/Accounts",
        params={"fields": "Modified_Time", "sort_by": "Modified_Time", "sort_order": "asc", "per_page": 200},
    )
    stamps = [rec["Modified_Time"] for rec in r.json()["data"]]
    assert stamps == sorted(stamps)
    r = await client.get(
        "/crm/v8/Accounts", params={"fields": "Modified_Time", "sort_by": "Modified_Time", "per_page": 200}
    )
    assert [rec["Modified_Time"] for rec in r.json()["data"]] == sorted(stamps, reverse=True)

    await client.post("/__sandbox/clock", json={"advance_s": 5})
    touched = touch(sandbox.app, "Accounts", count=3)
    r = await client.get("/crm/v8/Accounts", params={"fields": "Modified_Time"})
    newest = max(rec["Modified_Time"] for rec in r.json()["data"])
    r = await client.get(
        "/crm/v8/Accounts", params={"fields": "Account_Name"}, headers={"If-Modified-Since": newest}
    )
    assert r.status_code == 200
    assert sorted(rec["id"] for rec in r.json()["data"]) == sorted(touched)

    await client.post("/__sandbox/clock", json={"advance_s": 60})
    later = (await client.get("/__sandbox/clock")).json()["now"]
    r = await client.get(
        "/crm/v8/Accounts",
        params={"fields": "Account_Name"},
        headers={"If-Modified-Since": later.replace("Z", "+00:00")},
    )
    assert r.status_code == 204
    assert r.content == b""
    r = await client.get(
        "/crm/v8/Accounts", params={"fields": "Account_Name"}, headers={"If-Modified-Since": "yesterday"}
    )
    assert r.status_code == 400


async def test_deleted_records(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    r = await client.get("/crm/v8/Accounts/deleted", params={"type": "all"})
    assert r.status_code == 204
    ids = [zoho_id(sandbox.app, c.key) for c in sandbox.scenario.companies[:3]]
    names = {zoho_id(sandbox.app, c.key): c.name for c in sandbox.scenario.companies[:3]}
    assert delete(sandbox.app, "Accounts", ids[:2]) == ids[:2]
    r = await client.post(
        "/__sandbox/delete", json={"module": "Accounts", "ids": [ids[2]], "permanent": True}
    )
    assert r.json()["ids"] == [ids[2]]

    r = await client.get("/crm/v8/Accounts/deleted", params={"type": "all", "per_page": 2})
    body = r.json()
    assert r.status_code == 200
    assert body["info"] == {"per_page": 2, "count": 2, "page": 1, "more_records": True}
    row = next(d for d in body["data"] if d["type"] == "recycle")
    assert set(row) == {"deleted_by", "id", "display_name", "type", "created_by", "deleted_time"}
    assert row["display_name"] == names[row["id"]]
    assert ZOHO_TIME.match(row["deleted_time"])
    r = await client.get("/crm/v8/Accounts/deleted", params={"type": "permanent"})
    assert [d["id"] for d in r.json()["data"]] == [ids[2]]
    assert r.json()["data"][0]["display_name"] is None
    r = await client.get("/crm/v8/Accounts/deleted", params={"type": "recycle"})
    assert sorted(d["id"] for d in r.json()["data"]) == sorted(ids[:2])

    listed = await client.get("/crm/v8/Accounts", params={"fields": "Account_Name"})
    assert not set(ids) & {rec["id"] for rec in listed.json()["data"]}
    await client.post("/__sandbox/clock", json={"advance_s": 10})
    later = (await client.get("/__sandbox/clock")).json()["now"]
    r = await client.get("/crm/v8/Accounts/deleted", headers={"If-Modified-Since": later})
    assert r.status_code == 204


# ---- writes ---------------------------------------------------------------------------------------------


async def test_insert_update_and_per_record_errors(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    account = zoho_id(sandbox.app, sandbox.scenario.companies[0].key)
    task = {
        "Subject": "Propose CRM Enterprise",
        "Due_Date": "2026-11-15",
        "Priority": "High",
        "What_Id": {"id": account},
        "$se_module": "Accounts",
    }
    r = await client.post("/crm/v8/Tasks", json={"data": [task], "trigger": []})
    assert r.status_code == 201
    result = r.json()["data"][0]
    assert result["code"] == "SUCCESS"
    assert result["message"] == "record added"
    task_id = result["details"]["id"]
    assert re.fullmatch(r"\d{19}", task_id)
    assert ZOHO_TIME.match(result["details"]["Modified_Time"])

    r = await client.post(
        "/crm/v8/Tasks",
        json={"data": [task, {**task, "Not_A_Field": 1}, {**task, "Due_Date": "15/11/2026"}]},
    )
    assert r.status_code == 207
    codes = [d["code"] for d in r.json()["data"]]
    assert codes == ["SUCCESS", "INVALID_DATA", "INVALID_DATA"]
    assert r.json()["data"][1]["details"] == {"api_name": "Not_A_Field", "json_path": "$.data[1].Not_A_Field"}
    assert r.json()["data"][2]["details"]["api_name"] == "Due_Date"

    no_module = {k: v for k, v in task.items() if k != "$se_module"}
    r = await client.post("/crm/v8/Tasks", json={"data": [no_module, {"Description": "no subject"}]})
    assert r.status_code == 400
    assert [d["code"] for d in r.json()["data"]] == ["MANDATORY_NOT_FOUND", "MANDATORY_NOT_FOUND"]
    assert r.json()["data"][1]["details"]["api_name"] == "Subject"

    r = await client.post("/crm/v8/Tasks", json={"data": [task] * 101})
    assert r.status_code == 400
    assert r.json()["data"][0]["code"] == "LIMIT_EXCEEDED"
    assert r.json()["data"][0]["details"] == {"maximum_length": 100, "api_name": "data"}

    before = (await client.get("/crm/v8/Accounts", params={"fields": "Modified_Time"})).json()["data"]
    old = next(rec["Modified_Time"] for rec in before if rec["id"] == account)
    await client.post("/__sandbox/clock", json={"advance_s": 2})
    r = await client.put(
        "/crm/v8/Accounts",
        json={"data": [{"id": account, "NPS_Score": 10}, {"id": "1234", "NPS_Score": 3}, {"NPS_Score": 1}]},
    )
    assert r.status_code == 207
    assert [d["code"] for d in r.json()["data"]] == ["SUCCESS", "INVALID_DATA", "MANDATORY_NOT_FOUND"]
    assert r.json()["data"][0]["message"] == "record updated"
    after = (await client.get("/crm/v8/Accounts", params={"fields": "NPS_Score,Modified_Time"})).json()[
        "data"
    ]
    mine = next(rec for rec in after if rec["id"] == account)
    assert mine["NPS_Score"] == 10
    assert mine["Modified_Time"] > old

    r = await client.get(
        "/crm/v8/Tasks", params={"fields": "Subject,Status,What_Id", "sort_by": "Created_Time", "per_page": 1}
    )
    newest = r.json()["data"][0]
    assert newest["Status"] == "Not Started"
    assert newest["What_Id"]["id"] == account
    assert newest["$se_module"] == "Accounts"


async def test_upsert_matches_duplicate_check_fields(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    company = sandbox.scenario.companies[1]
    r = await client.post(
        "/crm/v8/Accounts/upsert",
        json={"data": [{"Account_Name": company.name, "Seats_Active": 7}, {"Account_Name": "Brand New Co"}]},
    )
    assert r.status_code == 200
    first, second = r.json()["data"]
    assert first["action"] == "update"
    assert first["duplicate_field"] == "Account_Name"
    assert first["details"]["id"] == zoho_id(sandbox.app, company.key)
    assert second["action"] == "insert"
    assert second["duplicate_field"] is None
    assert second["message"] == "record added"
    r = await client.post(
        "/crm/v8/Accounts/upsert",
        json={"data": [{"Account_Name": "Brand New Co", "Seats_Active": "many"}]},
    )
    assert r.status_code == 400
    assert r.json()["data"][0]["details"]["expected_data_type"] == "integer"


async def test_partial_batch_faults(client: httpx.AsyncClient) -> None:
    await client.post("/__sandbox/faults", json={"partial_batch_rate": 1.0})
    r = await client.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "A"}, {"Account_Name": "B"}]})
    assert r.status_code == 400
    assert [d["code"] for d in r.json()["data"]] == ["INTERNAL_ERROR", "INTERNAL_ERROR"]
    assert all(d["status"] == "error" for d in r.json()["data"])


# ---- fields -------------------------------------------------------------------------------------------


async def test_create_custom_fields(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    spec = {"fields": [{"field_label": "Upsell Loyalty Score", "data_type": "integer"}]}
    r = await client.post("/crm/v8/settings/fields", params={"module": "Accounts"}, json=spec)
    assert r.status_code == 201
    created = r.json()["fields"][0]
    assert created["code"] == "SUCCESS"
    assert created["message"] == "field created"
    assert re.fullmatch(r"\d{19}", created["details"]["id"])

    r = await client.get("/crm/v8/settings/fields", params={"module": "Accounts"})
    by_name = {f["api_name"]: f for f in r.json()["fields"]}
    field = by_name["Upsell_Loyalty_Score"]
    assert field["id"] == created["details"]["id"]
    assert field["custom_field"] is True
    assert field["data_type"] == "integer"
    assert field["field_label"] == "Upsell Loyalty Score"
    assert by_name["Account_Name"]["custom_field"] is False
    assert by_name["Seats_Purchased"]["custom_field"] is True

    r = await client.post(
        "/crm/v8/settings/fields",
        params={"module": "Accounts"},
        json={
            "fields": [
                {"field_label": "upsell loyalty score", "data_type": "integer"},
                {"field_label": "Upsell Reason", "data_type": "textarea", "length": 2000},
                {"field_label": "Weird", "data_type": "hologram"},
            ]
        },
    )
    assert r.status_code == 207
    assert [f["code"] for f in r.json()["fields"]] == ["DUPLICATE_DATA", "SUCCESS", "INVALID_DATA"]

    account = zoho_id(sandbox.app, sandbox.scenario.companies[2].key)
    r = await client.put(
        "/crm/v8/Accounts", json={"data": [{"id": account, "Upsell_Loyalty_Score": 87, "Upsell_Reason": "x"}]}
    )
    assert r.status_code == 200
    r = await client.get("/crm/v8/Accounts", params={"fields": "Upsell_Loyalty_Score,Upsell_Reason"})
    mine = next(rec for rec in r.json()["data"] if rec["id"] == account)
    assert mine["Upsell_Loyalty_Score"] == 87
    assert mine["Upsell_Reason"] == "x"
    r = await client.get("/crm/v8/settings/fields", params={"module": "Nope"})
    assert r.status_code == 400


# ---- COQL ---------------------------------------------------------------------------------------------


async def coql(client: httpx.AsyncClient, query: str) -> httpx.Response:
    return await client.post("/crm/v8/coql", json={"select_query": query})


async def test_coql_select_where_order_limit(client: httpx.AsyncClient) -> None:
    r = await coql(
        client,
        "select Account_Name, Owner, Modified_Time from Accounts "
        "where Modified_Time >= '2020-01-01T00:00:00+00:00' order by Modified_Time asc limit 0, 25",
    )
    assert r.status_code == 200
    body = r.json()
    assert body["info"] == {"count": 25, "more_records": True}
    stamps = [rec["Modified_Time"] for rec in body["data"]]
    assert stamps == sorted(stamps)
    assert set(body["data"][0]) == {"Account_Name", "Owner", "Modified_Time", "id"}
    assert set(body["data"][0]["Owner"]) == {"id"}
    r2 = await coql(
        client,
        "select Account_Name from Accounts where Modified_Time >= '2020-01-01T00:00:00+00:00' "
        "order by Modified_Time asc limit 25, 25",
    )
    assert r2.json()["info"]["more_records"] is False
    assert not {rec["id"] for rec in body["data"]} & {rec["id"] for rec in r2.json()["data"]}

    r = await coql(
        client, "select id from Deals where Stage = 'Closed Won' and (Amount > 1000 or Amount is null)"
    )
    assert r.status_code == 200
    r = await coql(client, "select Subject from Tasks where Subject like 'Follow%' limit 5")
    assert all(rec["Subject"].startswith("Follow") for rec in r.json()["data"])
    r = await coql(client, "select Subject from Tasks where Subject = 'No such subject at all'")
    assert r.status_code == 204


async def test_coql_finds_tasks_by_custom_key(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    r = await client.post(
        "/crm/v8/settings/fields",
        params={"module": "Tasks"},
        json={"fields": [{"field_label": "Upsell Key", "data_type": "text"}]},
    )
    assert r.status_code == 201
    account = zoho_id(sandbox.app, sandbox.scenario.companies[0].key)
    keys = ["k-1", "k-2", "O'Brien\\'s key"]
    data = [
        {"Subject": f"Upsell {k}", "Upsell_Key": k, "What_Id": {"id": account}, "$se_module": "Accounts"}
        for k in keys
    ]
    assert (await client.post("/crm/v8/Tasks", json={"data": data})).status_code == 201

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    r = await coql(
        client,
        f"select id, Upsell_Key, Status, What_Id from Tasks where Upsell_Key in ({', '.join(map(quote, keys))})",
    )
    assert r.status_code == 200
    found = {rec["Upsell_Key"]: rec for rec in r.json()["data"]}
    assert set(found) == set(keys)
    assert found["k-1"]["What_Id"] == {"id": account}
    assert found["k-1"]["$se_module"] == "Accounts"

    hostile = "x' or Upsell_Key is not null or Subject = 'y"
    r = await coql(client, f"select id from Tasks where Upsell_Key = {quote(hostile)}")
    assert r.status_code == 204  # the whole value is one literal, not syntax


async def test_coql_errors(client: httpx.AsyncClient) -> None:
    r = await coql(client, "select from Accounts")
    assert r.status_code == 400
    assert r.json()["code"] == "SYNTAX_ERROR"
    assert r.json()["status"] == "error"
    assert "near" in r.json()["details"]
    r = await coql(client, "select id from Accounts where Account_Name = 'unterminated")
    assert r.json()["code"] == "SYNTAX_ERROR"
    r = await coql(client, "select id from Accounts where Account_Name = 'a'; delete from Accounts")
    assert r.json()["code"] == "SYNTAX_ERROR"
    r = await coql(client, "select Nope from Accounts")
    assert r.json()["code"] == "INVALID_QUERY"
    assert r.json()["details"] == {"column_name": "Nope", "clause": "select"}
    r = await coql(client, "select id from Leads")
    assert r.json()["code"] == "INVALID_MODULE"
    r = await coql(client, "select id from Accounts limit 2001")
    assert r.json()["code"] == "INVALID_QUERY"
    assert r.json()["details"] == {"limit": "2001"}
    r = await coql(client, "select id from Accounts where Modified_Time > 'last week'")
    assert r.json()["code"] == "INVALID_QUERY"


# ---- users and limits ---------------------------------------------------------------------------------


async def test_users(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    r = await client.get("/crm/v8/users", params={"type": "AllUsers", "per_page": 2})
    body = r.json()
    assert r.status_code == 200
    user = body["users"][0]
    assert {"id", "full_name", "email", "status", "first_name", "last_name"} <= set(user)
    assert user["status"] == "active"
    assert user["id"] == zoho_id(sandbox.app, sandbox.scenario.owners[0].key)
    assert body["info"] == {"per_page": 2, "count": 2, "page": 1, "more_records": True}
    r = await client.get("/crm/v8/users", params={"type": "CurrentUser"})
    assert len(r.json()["users"]) == 1


async def test_credit_exhaustion(scenario: Scenario) -> None:
    for sb in start(scenario, daily_limit=5):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as c:
            r = await coql(c, "select id from Accounts limit 2000")  # 3 credits
            assert r.status_code == 200
            assert (await c.get("/__sandbox/credits")).json() == {"used": 3, "limit": 5, "remaining": 2}
            assert (await c.get("/crm/v8/users")).status_code == 200
            r = await coql(c, "select id from Accounts limit 500")  # 2 credits: over budget
            assert r.status_code == 429
            assert r.json()["code"] == "LIMIT_EXCEEDED"
            assert (await c.get("/crm/v8/users")).status_code == 200
            r = await c.get("/crm/v8/users")
            assert r.status_code == 429
            await c.post("/__sandbox/reset-limits")
            assert (await c.get("/crm/v8/users")).status_code == 200


async def test_concurrency_cap(scenario: Scenario) -> None:
    for sb in start(scenario, {"concurrency_limit": 2}, latency_ms=150):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as c:
            results = await asyncio.gather(*(c.get("/crm/v8/users") for _ in range(6)))
            statuses = sorted(r.status_code for r in results)
            assert statuses.count(200) == 2
            assert statuses.count(429) == 4
            rejected = next(r for r in results if r.status_code == 429)
            assert rejected.json()["code"] == "TOO_MANY_REQUESTS"


async def test_rolling_window_and_storms(scenario: Scenario) -> None:
    for sb in start(scenario, rate_limit_max=3):
        async with httpx.AsyncClient(base_url=sb.url, headers=AUTH) as c:
            statuses = [(await c.get("/crm/v8/users")).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            await c.post("/__sandbox/reset-limits")
            await c.post("/__sandbox/faults", json={"storm_probability": 1.0, "storm_length": 2})
            r = await c.get("/crm/v8/users")
            assert r.status_code == 429
            assert r.json()["code"] == "TOO_MANY_REQUESTS"


async def test_control_routes(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    planted = (await client.get("/__sandbox/planted")).json()
    assert len(planted) == 40
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
    key = sandbox.scenario.companies[0].key
    ids = (await client.get("/__sandbox/ids", params={"key": key})).json()
    assert ids == {key: zoho_id(sandbox.app, key)}
    r = await client.post(
        "/__sandbox/set-fields", json={"module": "Accounts", "id": ids[key], "values": {"NPS_Score": 2}}
    )
    assert r.json()["NPS_Score"] == 2
    r = await client.post("/__sandbox/touch", json={"module": "Accounts", "count": 2})
    assert len(r.json()["ids"]) == 2
