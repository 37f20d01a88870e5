"""The Salesforce sandbox over real HTTP on loopback: auth flows, SOQL, paging, getDeleted, writes, tooling, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from crm_upsell_salesforce.sandbox import (
    KEY_PREFIXES,
    create_app,
    delete,
    salesforce_id,
    sandbox_keypair,
    sandbox_state,
    set_fields,
    sf_datetime,
    touch,
)
from crm_upsell_salesforce.sandbox.soql_parse import SoqlError, parse_soql, quote
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from crm_upsell_connector.sandbox import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxOptions, SandboxServer

V = "/services/data/v62.0"
AUTH = {"Authorization": "Bearer sandbox-token"}


@dataclass
class Sandbox:
    app: Starlette
    url: str
    client: httpx.Client

    def query(
        self, soql: str, *, all_rows: bool = False, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        path = f"{V}/queryAll" if all_rows else f"{V}/query"
        return self.client.get(path, params={"q": soql}, headers=headers)

    def records(self, soql: str, *, all_rows: bool = False) -> list[dict[str, Any]]:
        r = self.query(soql, all_rows=all_rows)
        assert r.status_code == 200, r.text
        body = r.json()
        out: list[dict[str, Any]] = body["records"]
        while not body["done"]:
            body = self.client.get(body["nextRecordsUrl"]).json()
            out.extend(body["records"])
        return out


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(30, seed=3)


@pytest.fixture(scope="module")
def big_scenario() -> Scenario:
    # ~2,500 Tasks: enough for more than one default 2,000-record batch.
    return build_scenario(40, seed=5, activities_per_account=70)


def start(scenario: Scenario, **options: Any) -> Iterator[Sandbox]:
    app = create_app(scenario, SandboxOptions(accounts=len(scenario.companies), **options))
    with SandboxServer(app) as url, httpx.Client(base_url=url, headers=AUTH) as client:
        yield Sandbox(app, url, client)


@pytest.fixture
def sandbox(scenario: Scenario) -> Iterator[Sandbox]:
    yield from start(scenario)


@pytest.fixture(scope="module")
def shared(scenario: Scenario) -> Iterator[Sandbox]:
    """One sandbox for tests that only read."""
    yield from start(scenario)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert isinstance(body, list), body
    return str(body[0]["errorCode"])


# ---- auth ----------------------------------------------------------------------------------------------


def token_request(sb: Sandbox, **form: str) -> httpx.Response:
    return httpx.post(f"{sb.url}/services/oauth2/token", data=form)


def assertion(private_pem: str, **claims: Any) -> str:
    payload = {
        "iss": "sandbox-client-id",
        "sub": "integration@example.com",
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(payload, private_pem, algorithm="RS256")


def test_client_credentials_and_refresh_token_flows(sandbox: Sandbox) -> None:
    r = token_request(
        sandbox,
        grant_type="client_credentials",
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.url
    org_id, user_id = body["id"].split("/")[-2:]
    assert org_id.startswith("00D") and user_id.startswith("005") and len(user_id) == 18
    ok = httpx.get(
        f"{body['instance_url']}{V}/limits", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert ok.status_code == 200

    r = token_request(
        sandbox,
        grant_type="refresh_token",
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
        refresh_token="sandbox-refresh-token",
    )
    assert r.status_code == 200 and "refresh_token" not in r.json()

    bad = token_request(
        sandbox,
        grant_type="refresh_token",
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
        refresh_token="nope",
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    wrong_secret = token_request(
        sandbox, grant_type="client_credentials", client_id="sandbox-client-id", client_secret="x"
    )
    assert wrong_secret.status_code == 400 and wrong_secret.json()["error"] == "invalid_client"
    unknown = token_request(sandbox, grant_type="password")
    assert unknown.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer_flow_verifies_the_signature_issuer_and_expiry(sandbox: Sandbox) -> None:
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    keys = sandbox_keypair()
    assert keys == sandbox_keypair()  # fixed
    assert keys.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    r = token_request(sandbox, grant_type=grant, assertion=assertion(keys.private_pem))
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert (
        httpx.get(f"{sandbox.url}{V}/limits", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )

    other = rsa.generate_private_key(public_exponent=65_537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    forged = token_request(sandbox, grant_type=grant, assertion=assertion(other_pem))
    assert forged.status_code == 400
    assert forged.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}

    wrong_iss = token_request(sandbox, grant_type=grant, assertion=assertion(keys.private_pem, iss="someone"))
    assert wrong_iss.json()["error"] == "invalid_client_id"
    expired = token_request(
        sandbox, grant_type=grant, assertion=assertion(keys.private_pem, exp=int(time.time()) - 60)
    )
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"
    bad_aud = token_request(sandbox, grant_type=grant, assertion=assertion(keys.private_pem, aud="login"))
    assert bad_aud.json()["error_description"] == "audience is invalid"


def test_expired_or_unknown_sessions_get_invalid_session_id(scenario: Scenario) -> None:
    for sb in start(scenario, access_token_ttl_s=60):
        r = token_request(
            sb,
            grant_type="client_credentials",
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert sb.client.get(f"{V}/limits", headers=headers).status_code == 200
        sb.client.post("/__sandbox/clock", json={"advance_s": 61})
        expired = sb.client.get(f"{V}/limits", headers=headers)
        assert expired.status_code == 401
        assert expired.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        assert sb.client.get(f"{V}/limits", headers={"Authorization": "Bearer junk"}).status_code == 401
        assert httpx.get(f"{sb.url}{V}/limits").status_code == 401
        # The expire-tokens control route ends every issued session at once.
        r = token_request(
            sb,
            grant_type="client_credentials",
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
        )
        fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert sb.client.post("/__sandbox/expire-tokens").json()["expired"] >= 1
        assert sb.client.get(f"{V}/limits", headers=fresh).status_code == 401


# ---- query, paging and SOQL ----------------------------------------------------------------------------


def test_records_have_salesforce_shapes(sandbox: Sandbox, scenario: Scenario) -> None:
    accounts = sandbox.records(
        "SELECT Id, Name, Website, Industry, OwnerId, Owner.Email, CreatedDate, SystemModstamp, IsDeleted, "
        "seats_purchased__c, seats_active__c, nps_score__c, onboarding_stage__c, do_not_contact__c FROM Account"
    )
    assert len(accounts) == len(scenario.companies)
    first = accounts[0]
    assert first["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{first['Id']}"}
    assert len(first["Id"]) == 18 and first["Id"].startswith("001")
    assert len(first["SystemModstamp"]) == 28 and first["SystemModstamp"][19] == "."
    assert first["SystemModstamp"].endswith("+0000")
    assert first["IsDeleted"] is False
    assert isinstance(first["do_not_contact__c"], bool)
    assert first["Owner"]["attributes"]["type"] == "User"
    assert first["Owner"]["Email"].endswith("@sandbox-sales.example.com")
    planted = sandbox.client.get("/__sandbox/planted").json()
    assert set(planted) == {a["Id"] for a in accounts}
    assert salesforce_id(sandbox.app, scenario.companies[0].key) in planted

    for obj, fields in {
        "Contact": "AccountId, Email, FirstName, LastName, Name",
        "Opportunity": "AccountId, OwnerId, Name, StageName, IsClosed, IsWon, Amount, CloseDate, CurrencyIsoCode",
        "OpportunityLineItem": "OpportunityId, PricebookEntryId, Product2Id, ProductCode, Name, Quantity, "
        "UnitPrice, TotalPrice, Product2.Family, PricebookEntry.Product2Id",
        "Product2": "Name, ProductCode, Family, IsActive, Tier__c",
        "PricebookEntry": "Product2Id, UnitPrice, IsActive",
        "Asset": "AccountId, Product2Id, Name, Quantity, Price, Status",
        "Task": "WhatId, WhoId, OwnerId, Subject, ActivityDate, Status, Priority, TaskSubtype, CallType, "
        "CallDisposition, IsClosed, Account.OwnerId",
        "Event": "WhatId, OwnerId, Subject, StartDateTime, ActivityDateTime, EventSubtype",
        "User": "Name, Email, IsActive",
    }.items():
        rows = sandbox.records(f"SELECT Id, {fields}, SystemModstamp, LastModifiedDate FROM {obj}")
        assert rows, obj
        assert all(r["Id"].startswith(KEY_PREFIXES[obj]) for r in rows), obj

    won = sandbox.records(
        "SELECT Id, IsWon, IsClosed, StageName FROM Opportunity WHERE StageName = 'Closed Won'"
    )
    assert won and all(r["IsWon"] and r["IsClosed"] for r in won)
    subtypes = {r["TaskSubtype"] for r in sandbox.records("SELECT Id, TaskSubtype FROM Task")}
    assert subtypes == {"Call", "Email", "Task"}
    calls = sandbox.records("SELECT Id, CallType FROM Task WHERE TaskSubtype = 'Call'")
    assert {c["CallType"] for c in calls} <= {"Inbound", "Outbound"}
    items = sandbox.records("SELECT Quantity, UnitPrice, TotalPrice FROM OpportunityLineItem")
    assert all(i["TotalPrice"] == pytest.approx(i["Quantity"] * i["UnitPrice"]) for i in items)


def test_paging_with_next_records_url_over_2000_records(big_scenario: Scenario) -> None:
    for sb in start(big_scenario):
        # queryAll: archived tasks too (query alone no longer has 2,000 of them).
        r = sb.query(
            "SELECT Id, Subject, SystemModstamp FROM Task ORDER BY SystemModstamp, Id", all_rows=True
        )
        body = r.json()
        total = body["totalSize"]
        assert total > 2000
        assert len(body["records"]) == 2000 and body["done"] is False
        next_url = body["nextRecordsUrl"]
        assert next_url.startswith(f"{V}/query/01g") and next_url.endswith("-2000")
        second = sb.client.get(next_url).json()
        again = sb.client.get(next_url).json()  # a retried page is identical
        assert second == again
        assert second["done"] is True and "nextRecordsUrl" not in second
        rows = body["records"] + second["records"]
        assert len(rows) == total == len({x["Id"] for x in rows})
        keys = [(x["SystemModstamp"], x["Id"]) for x in rows]
        assert keys == sorted(keys)

        # A smaller batch through Sforce-Query-Options, and LIMIT across batches.
        small = sb.query(
            "SELECT Id FROM Task", all_rows=True, headers={"Sforce-Query-Options": "batchSize=500"}
        ).json()
        assert len(small["records"]) == 500 and small["totalSize"] == total
        limited = sb.query(
            "SELECT Id FROM Task LIMIT 700", headers={"Sforce-Query-Options": "batchSize=500"}
        ).json()
        assert limited["totalSize"] == 700
        rest = sb.client.get(limited["nextRecordsUrl"]).json()
        assert len(rest["records"]) == 200 and rest["done"] is True
        assert sb.client.get(f"{V}/query/01gXXXXXXXXXXXXXXX-2000").status_code == 400


def test_incremental_query_by_system_modstamp(sandbox: Sandbox) -> None:
    before = sandbox.records("SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp DESC LIMIT 1")[0]
    touched = touch(sandbox.app, "Account", count=3)
    assert len(touched) == 3
    since = before["SystemModstamp"]
    rows = sandbox.records(
        f"SELECT Id FROM Account WHERE SystemModstamp > {since} ORDER BY SystemModstamp, Id"
    )
    assert [r["Id"] for r in rows] == sorted(touched)
    # Keyset pattern with OR, ISO literal with Z.
    stamp = sandbox.records(f"SELECT SystemModstamp FROM Account WHERE Id = '{touched[0]}'")[0][
        "SystemModstamp"
    ]
    z = stamp.replace("+0000", "Z")
    keyset = sandbox.records(
        f"SELECT Id FROM Account WHERE (SystemModstamp > {z}) OR (SystemModstamp = {z} AND Id > '{touched[0]}') "
        "ORDER BY SystemModstamp, Id"
    )
    assert [r["Id"] for r in keyset] == sorted(touched)[1:]


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Account",
        "select id, name from account where name != null order by name desc nulls last limit 5",
        "SELECT Id, Account.OwnerId FROM Contact WHERE Account.OwnerId != null",
        "SELECT Id FROM OpportunityLineItem WHERE Product2.ProductCode IN ('CRM-PRO', 'CRM-ENT')",
        "SELECT Id FROM Opportunity WHERE StageName NOT IN ('Closed Won', 'Closed Lost') AND Amount >= 100.5",
        "SELECT Id FROM Opportunity WHERE CloseDate >= 2025-01-01 AND CloseDate < 2027-01-01",
        "SELECT Id FROM Task WHERE SystemModstamp >= 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id",
        "SELECT Id FROM Task WHERE SystemModstamp >= 2026-01-01T00:00:00.000+0000 AND IsClosed = false",
        "SELECT Id FROM Account WHERE (Name LIKE 'A%' OR Name LIKE '%Labs%') AND do_not_contact__c = false",
        "SELECT Id FROM Account WHERE NOT (Name = 'x') AND nps_score__c > -1",
        "SELECT Id FROM Asset WHERE Product2.Family = 'crm' ORDER BY Quantity DESC, Id",
    ],
)
def test_soql_subset_is_accepted(shared: Sandbox, soql: str) -> None:
    r = shared.query(soql)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("SELECT FROM Account", "MALFORMED_QUERY"),
        ("SELECT COUNT() FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT 10 OFFSET 5", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Account.Owner.Email = 'x'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'bad \\q escape'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name <> 'x'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = :name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS:30", "MALFORMED_QUERY"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account; DELETE", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_soql_outside_the_subset_is_rejected(shared: Sandbox, soql: str, code: str) -> None:
    r = shared.query(soql)
    assert r.status_code == 400
    assert error_code(r) == code


def test_quoted_values_are_data_not_soql(sandbox: Sandbox, scenario: Scenario) -> None:
    ids = [salesforce_id(sandbox.app, c.key) for c in scenario.companies[:3]]
    tricky = 'O\'Reilly "Best" \\ Co\n'
    set_fields(sandbox.app, "Account", ids[0], {"Name": tricky})
    set_fields(sandbox.app, "Account", ids[1], {"Name": "100% Juice_Co"})
    set_fields(sandbox.app, "Account", ids[2], {"Name": "100X Juice-Co"})

    found = sandbox.records(f"SELECT Id, Name FROM Account WHERE Name = {quote(tricky)}")
    assert [(r["Id"], r["Name"]) for r in found] == [(ids[0], tricky)]
    hostile = sandbox.records(
        f"SELECT Id FROM Account WHERE Name = {quote(chr(39) + ' OR Name != ' + chr(39))}"
    )
    assert hostile == []
    sneaky = quote("') OR (Name != '")
    hostile_in = sandbox.records(f"SELECT Id FROM Account WHERE Name IN ('x', {sneaky})")
    assert hostile_in == []
    # Unescaped, the same text is not a valid query of ours.
    assert sandbox.query("SELECT Id FROM Account WHERE Name = '' OR Name != ''' ").status_code == 400

    # LIKE: % and _ are wildcards unless escaped; matching ignores case, like Salesforce.
    escaped = sandbox.records("SELECT Id FROM Account WHERE Name LIKE '100\\% juice\\_%'")
    assert [r["Id"] for r in escaped] == [ids[1]]
    wild = sandbox.records("SELECT Id FROM Account WHERE Name LIKE '100_ Juice_Co'")
    assert sorted(r["Id"] for r in wild) == sorted(ids[1:3])
    assert sandbox.records("SELECT Id FROM Account WHERE Name = '100% JUICE_CO'")[0]["Id"] == ids[1]


def test_parser_unit() -> None:
    q = parse_soql(
        "SELECT Id, Account.OwnerId FROM Contact WHERE Email LIKE '%\\_x' ORDER BY Id DESC LIMIT 3"
    )
    assert q.fields == ("Id", "Account.OwnerId") and q.sobject == "Contact" and q.limit == 3
    assert q.order_by[0].desc is True
    with pytest.raises(SoqlError):
        parse_soql("SELECT Id FROM Account WHERE")
    assert quote("a'b\\c") == "'a\\'b\\\\c'"


# ---- deletes -------------------------------------------------------------------------------------------


def test_get_deleted_window_query_all_and_the_15_day_limit(sandbox: Sandbox) -> None:
    state = sandbox_state(sandbox.app)
    gone = delete(sandbox.app, "Account", count=2)
    assert len(gone) == 2
    now = state.now_ms()
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    start = time.strftime(fmt, time.gmtime(now / 1000 - 3600))
    end = time.strftime(fmt, time.gmtime(now / 1000 + 120))
    r = sandbox.client.get(f"{V}/sobjects/Account/deleted/", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(d["id"] for d in body["deletedRecords"]) == sorted(gone)
    assert body["deletedRecords"][0]["deletedDate"].endswith("+0000")
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(body)

    old = time.strftime(fmt, time.gmtime(now / 1000 - 16 * 86_400))
    too_old = sandbox.client.get(f"{V}/sobjects/Account/deleted/", params={"start": old, "end": end})
    assert too_old.status_code == 400 and error_code(too_old) == "INVALID_REPLICATION_DATE"
    backwards = sandbox.client.get(f"{V}/sobjects/Account/deleted/", params={"start": end, "end": start})
    assert error_code(backwards) == "INVALID_REPLICATION_DATE"

    live = {r["Id"] for r in sandbox.records("SELECT Id FROM Account")}
    assert not live & set(gone)
    deleted = sandbox.records("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", all_rows=True)
    assert sorted(r["Id"] for r in deleted) == sorted(gone)
    everything = sandbox.records("SELECT Id FROM Account", all_rows=True)
    assert len(everything) == len(live) + 2

    update = sandbox.client.patch(
        f"{V}/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [{"attributes": {"type": "Account"}, "id": gone[0], "Name": "x"}],
        },
    )
    assert update.json()[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


# ---- writes --------------------------------------------------------------------------------------------


def test_collection_update_reports_per_record_results_in_order(sandbox: Sandbox, scenario: Scenario) -> None:
    a, b, c = (salesforce_id(sandbox.app, co.key) for co in scenario.companies[:3])
    before = sandbox.records(f"SELECT Id, SystemModstamp FROM Account WHERE Id = '{a}'")[0]["SystemModstamp"]
    time.sleep(0.002)
    records = [
        {"attributes": {"type": "Account"}, "id": a, "nps_score__c": 9, "onboarding_stage__c": "live"},
        {"attributes": {"type": "Account"}, "id": b, "Bogus__c": 1},
        {"attributes": {"type": "Account"}, "id": "001000000000000AAA"},
        {"attributes": {"type": "Account"}, "id": "003xyz"},
        {"attributes": {"type": "Account"}, "id": c, "Name": "x" * 300},
        {"attributes": {"type": "Account"}, "id": c, "SystemModstamp": "2026-01-01T00:00:00Z"},
        {"attributes": {"type": "Account"}, "Name": "no id"},
    ]
    r = sandbox.client.patch(f"{V}/composite/sobjects", json={"allOrNone": False, "records": records})
    assert r.status_code == 200
    results = r.json()
    assert results[0] == {"id": a, "success": True, "errors": []}
    codes = [res["errors"][0]["statusCode"] if res["errors"] else None for res in results]
    assert codes == [
        None,
        "INVALID_FIELD",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
        "STRING_TOO_LONG",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "MISSING_ARGUMENT",
    ]
    assert results[1]["errors"][0]["fields"] == ["Bogus__c"]
    row = sandbox.records(
        f"SELECT nps_score__c, SystemModstamp, LastModifiedDate FROM Account WHERE Id = '{a}'"
    )[0]
    assert row["nps_score__c"] == 9.0
    assert row["SystemModstamp"] > before and row["LastModifiedDate"] == row["SystemModstamp"]

    # allOrNone: one failure rolls every record back.
    rolled = sandbox.client.patch(
        f"{V}/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "id": a, "nps_score__c": 1},
                {"attributes": {"type": "Account"}, "id": b, "Bogus__c": 1},
            ],
        },
    ).json()
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sandbox.records(f"SELECT nps_score__c FROM Account WHERE Id = '{a}'")[0]["nps_score__c"] == 9.0

    too_many = [{"attributes": {"type": "Account"}, "id": a, "Name": "n"}] * 201
    capped = sandbox.client.patch(f"{V}/composite/sobjects", json={"allOrNone": False, "records": too_many})
    assert capped.status_code == 400 and error_code(capped) == "EXCEEDED_ID_LIMIT"
    wrong_type = sandbox.client.patch(
        f"{V}/composite/sobjects",
        json={"records": [{"attributes": {"type": "Account"}, "id": a, "nps_score__c": "lots"}]},
    )
    assert wrong_type.status_code == 400 and error_code(wrong_type) == "JSON_PARSER_ERROR"


def test_collection_create_tasks(sandbox: Sandbox, scenario: Scenario) -> None:
    account = salesforce_id(sandbox.app, scenario.companies[0].key)
    owner = salesforce_id(sandbox.app, scenario.owners[0].key)
    r = sandbox.client.post(
        f"{V}/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Task"},
                    "WhatId": account,
                    "OwnerId": owner,
                    "Subject": "Upsell: propose CRM Enterprise",
                    "Description": "Loyal, seats full.",
                    "ActivityDate": "2026-12-01",
                    "Priority": "High",
                },
                {"attributes": {"type": "Task"}, "WhatId": "001000000000000AAA", "Subject": "x"},
                {"attributes": {"type": "Task"}, "Id": "00T000000000000AAA", "Subject": "x"},
            ],
        },
    )
    assert r.status_code == 200
    ok, missing, with_id = r.json()
    assert ok["success"] is True and ok["id"].startswith("00T")
    assert missing["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert with_id["errors"][0]["statusCode"] == "INVALID_FIELD"
    task = sandbox.records(
        f"SELECT Id, Status, Priority, TaskSubtype, IsClosed, AccountId, OwnerId, Subject FROM Task WHERE Id = '{ok['id']}'"
    )[0]
    assert task["Status"] == "Not Started" and task["IsClosed"] is False and task["TaskSubtype"] == "Task"
    assert task["AccountId"] == account and task["Priority"] == "High"
    # Completing it through an update flips IsClosed.
    done = sandbox.client.patch(
        f"{V}/composite/sobjects",
        json={"records": [{"attributes": {"type": "Task"}, "id": ok["id"], "Status": "Completed"}]},
    ).json()
    assert done[0]["success"] is True
    assert sandbox.records(f"SELECT IsClosed FROM Task WHERE Id = '{ok['id']}'")[0]["IsClosed"] is True


def test_partial_batch_faults_fail_single_records(scenario: Scenario) -> None:
    for sb in start(scenario, faults=FaultOptions(partial_batch_rate=0.5, seed=1)):
        ids = [salesforce_id(sb.app, c.key) for c in scenario.companies[:20]]
        records = [{"attributes": {"type": "Account"}, "id": i, "nps_score__c": 5} for i in ids]
        results = sb.client.patch(f"{V}/composite/sobjects", json={"records": records}).json()
        assert len(results) == 20
        failed = [r for r in results if not r["success"]]
        assert 0 < len(failed) < 20
        assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}


# ---- tooling -------------------------------------------------------------------------------------------


def test_tooling_custom_field_create_query_and_duplicate(sandbox: Sandbox) -> None:
    q = "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId = 'Account'"
    r = sandbox.client.get(f"{V}/tooling/query", params={"q": q})
    assert r.status_code == 200
    body = r.json()
    assert body["entityTypeName"] == "CustomField"
    names = {rec["DeveloperName"] for rec in body["records"]}
    assert {"seats_purchased", "nps_score", "do_not_contact"} <= names
    assert all(rec["Id"].startswith("00N") for rec in body["records"])

    spec = {
        "FullName": "Account.Crm_Upsell_Loyalty_Score__c",
        "Metadata": {"label": "Loyalty score", "type": "Number", "precision": 5, "scale": 0},
    }
    created = sandbox.client.post(f"{V}/tooling/sobjects/CustomField", json=spec)
    assert created.status_code == 201
    assert created.json()["success"] is True and created.json()["errors"] == []
    duplicate = sandbox.client.post(f"{V}/tooling/sobjects/CustomField", json=spec)
    assert duplicate.status_code == 400 and error_code(duplicate) == "DUPLICATE_DEVELOPER_NAME"

    found = sandbox.client.get(
        f"{V}/tooling/query",
        params={
            "q": "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId = 'Account' "
            "AND DeveloperName IN ('Crm_Upsell_Loyalty_Score', 'Crm_Upsell_Reason')"
        },
    ).json()
    assert [rec["DeveloperName"] for rec in found["records"]] == ["Crm_Upsell_Loyalty_Score"]

    # Field-level security: a field created through the API is hidden until a permission set grants it.
    soql = "SELECT Id, Crm_Upsell_Loyalty_Score__c FROM Account LIMIT 1"
    hidden = sandbox.query(soql)
    assert hidden.status_code == 400 and error_code(hidden) == "INVALID_FIELD"
    describe = sandbox.client.get(f"{V}/sobjects/Account/describe").json()
    assert "Crm_Upsell_Loyalty_Score__c" not in {f["name"] for f in describe["fields"]}
    account_id = sandbox.records("SELECT Id FROM Account LIMIT 1")[0]["Id"]

    def write_score() -> dict[str, Any]:
        record = {"attributes": {"type": "Account"}, "id": account_id, "Crm_Upsell_Loyalty_Score__c": 87}
        result: dict[str, Any] = sandbox.client.patch(
            f"{V}/composite/sobjects", json={"records": [record]}
        ).json()[0]
        return result

    assert write_score()["errors"][0]["statusCode"] == "INVALID_FIELD"

    def create(sobject: str, **values: Any) -> dict[str, Any]:
        record = {"attributes": {"type": sobject}, **values}
        result: dict[str, Any] = sandbox.client.post(
            f"{V}/composite/sobjects", json={"records": [record]}
        ).json()[0]
        return result

    ps = create("PermissionSet", Name="Test_Access", Label="Test access")["id"]
    assert create("PermissionSet", Name="Test_Access", Label="Again")["errors"][0]["statusCode"] == (
        "DUPLICATE_DEVELOPER_NAME"
    )
    edit_without_read = create(
        "FieldPermissions",
        ParentId=ps,
        SobjectType="Account",
        Field="Account.Crm_Upsell_Loyalty_Score__c",
        PermissionsEdit=True,
    )
    assert edit_without_read["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert (
        create("FieldPermissions", ParentId=ps, SobjectType="Account", Field="Account.NoSuch__c")["errors"][
            0
        ]["statusCode"]
        == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    )
    grant = create(
        "FieldPermissions",
        ParentId=ps,
        SobjectType="Account",
        Field="Account.Crm_Upsell_Loyalty_Score__c",
        PermissionsRead=True,
    )["id"]
    # Granted to a permission set nobody has: still hidden.
    assert sandbox.query(soql).status_code == 400
    me = sandbox.records("SELECT Id FROM User ORDER BY Id LIMIT 1")[0]["Id"]
    assert create("PermissionSetAssignment", AssigneeId=me, PermissionSetId=ps)["success"] is True
    assert create("PermissionSetAssignment", AssigneeId=me, PermissionSetId=ps)["errors"][0][
        "statusCode"
    ] == ("DUPLICATE_VALUE")
    account = sandbox.records(soql)[0]
    assert account["Crm_Upsell_Loyalty_Score__c"] is None
    describe = sandbox.client.get(f"{V}/sobjects/Account/describe").json()
    field = next(f for f in describe["fields"] if f["name"] == "Crm_Upsell_Loyalty_Score__c")
    assert field["custom"] is True and field["type"] == "double" and field["updateable"] is False
    assert write_score()["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    upgrade = {"attributes": {"type": "FieldPermissions"}, "id": grant, "PermissionsEdit": True}
    assert sandbox.client.patch(f"{V}/composite/sobjects", json={"records": [upgrade]}).json()[0]["success"]
    assert write_score()["success"] is True
    assert sandbox.records(soql)[0]["Crm_Upsell_Loyalty_Score__c"] == 87

    # Text, long text and datetime fields, also on Task.
    for full_name, meta in [
        ("Task.Crm_Upsell_Key__c", {"label": "Upsell key", "type": "Text", "length": 80}),
        (
            "Account.Crm_Upsell_Reason__c",
            {"label": "Reason", "type": "LongTextArea", "length": 32768, "visibleLines": 5},
        ),
        ("Account.Crm_Upsell_Scored_At__c", {"label": "Scored at", "type": "DateTime"}),
    ]:
        made = sandbox.client.post(
            f"{V}/tooling/sobjects/CustomField", json={"FullName": full_name, "Metadata": meta}
        )
        assert made.status_code == 201, made.text
    key_query = "SELECT Id, Crm_Upsell_Key__c FROM Task WHERE Crm_Upsell_Key__c = 'k1'"
    assert sandbox.query(key_query).status_code == 400  # hidden until granted
    create(
        "FieldPermissions",
        ParentId=ps,
        SobjectType="Task",
        Field="Task.Crm_Upsell_Key__c",
        PermissionsRead=True,
        PermissionsEdit=True,
    )
    assert sandbox.query(key_query).status_code == 200
    bad = sandbox.client.post(
        f"{V}/tooling/sobjects/CustomField",
        json={"FullName": "Account.No_Length__c", "Metadata": {"label": "x", "type": "Text"}},
    )
    assert bad.status_code == 400


# ---- limits, faults, versions, describe -----------------------------------------------------------------


def test_limits_header_and_request_limit_exceeded(scenario: Scenario) -> None:
    for sb in start(scenario, daily_limit=5):
        r = sb.client.get(f"{V}/limits")
        assert r.status_code == 200
        assert r.headers["Sforce-Limit-Info"] == "api-usage=1/5"
        assert r.json()["DailyApiRequests"] == {"Max": 5, "Remaining": 4}
        for _ in range(4):
            assert sb.query("SELECT Id FROM User").status_code == 200
        over = sb.query("SELECT Id FROM User")
        assert over.status_code == 403
        assert over.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        assert over.headers["Sforce-Limit-Info"] == "api-usage=5/5"


def test_injected_faults_look_like_salesforce(scenario: Scenario) -> None:
    for sb in start(scenario, faults=FaultOptions(error_rate=1.0, seed=2)):
        statuses = {sb.client.get(f"{V}/limits").status_code for _ in range(12)}
        assert statuses <= {500, 503} and statuses
        sb.client.post(
            "/__sandbox/faults", json={"error_rate": 0.0, "storm_probability": 1.0, "storm_length": 2}
        )
        storm = sb.client.get(f"{V}/limits")
        assert storm.status_code == 503 and error_code(storm) == "SERVER_UNAVAILABLE"
        sb.client.post("/__sandbox/faults", json={"storm_probability": 0.0, "drop_rate": 1.0})
        with pytest.raises(httpx.TransportError):
            sb.client.get(f"{V}/limits")


def test_versions_describe_and_version_checks(sandbox: Sandbox) -> None:
    versions = httpx.get(f"{sandbox.url}/services/data/").json()
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
    assert sandbox.client.get("/services/data/v58.0/limits").status_code == 200
    assert sandbox.client.get("/services/data/v5.0/limits").status_code == 404
    desc = sandbox.client.get(f"{V}/sobjects/Task/describe").json()
    assert desc["name"] == "Task" and desc["keyPrefix"] == "00T"
    names = {f["name"] for f in desc["fields"]}
    assert {"WhatId", "TaskSubtype", "CallType", "SystemModstamp"} <= names
    assert sandbox.client.get(f"{V}/sobjects/Widget__c/describe").status_code == 404
    stats = sandbox.client.get("/__sandbox/stats").json()
    assert "GET /services/data/{version}/sobjects/Task/describe" in stats["by_route"]


def test_control_routes(sandbox: Sandbox, scenario: Scenario) -> None:
    key = scenario.companies[0].key
    ids = sandbox.client.get("/__sandbox/ids", params={"key": key}).json()
    account = ids[key]
    touched = sandbox.client.post("/__sandbox/touch", json={"object": "Account", "ids": [account]}).json()
    assert touched["ids"] == [account]
    newest = sandbox.records("SELECT Id FROM Account ORDER BY SystemModstamp DESC LIMIT 1")[0]["Id"]
    assert newest == account
    changed = sandbox.client.post(
        "/__sandbox/set-fields", json={"object": "Account", "id": account, "fields": {"nps_score__c": 2}}
    ).json()
    assert changed["nps_score__c"] == 2.0
    removed = sandbox.client.post("/__sandbox/delete", json={"object": "Contact", "count": 1}).json()
    assert len(removed["ids"]) == 1
    assert sandbox.records(f"SELECT Id FROM Contact WHERE Id = '{removed['ids'][0]}'") == []


# ---- archived activities, purged deletes, long reads ----------------------------------------------------


def test_archived_activities_are_returned_by_query_all_only(sandbox: Sandbox) -> None:
    every = sandbox.records("SELECT Id, IsArchived, ActivityDate FROM Task", all_rows=True)
    archived = [t for t in every if t["IsArchived"]]
    assert archived, "the scenario has closed tasks older than a year"
    visible = {t["Id"] for t in sandbox.records("SELECT Id FROM Task")}
    assert not visible & {t["Id"] for t in archived}
    assert len(visible) == len(every) - len(archived)
    counted = sandbox.query("SELECT Id FROM Task ORDER BY SystemModstamp").json()["totalSize"]
    assert counted == len(visible)
    fresh = next(t["Id"] for t in every if not t["IsArchived"])
    assert sandbox.client.post("/__sandbox/archive", json={"object": "Task", "ids": [fresh]}).json()[
        "ids"
    ] == [fresh]
    assert fresh not in {t["Id"] for t in sandbox.records("SELECT Id FROM Task")}


def test_purged_deletes_leave_query_all_and_move_earliest_date_available(sandbox: Sandbox) -> None:
    (gone,) = delete(sandbox.app, "Contact", count=1)
    assert gone in {
        r["Id"] for r in sandbox.records("SELECT Id FROM Contact WHERE IsDeleted = true", all_rows=True)
    }
    window = {"start": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"}
    state = sandbox_state(sandbox.app)
    start = sf_datetime(state.now_ms() - 3_600_000)
    window["start"] = start
    before = sandbox.client.get(f"{V}/sobjects/Contact/deleted/", params=window).json()
    assert [d["id"] for d in before["deletedRecords"]] == [gone]
    assert sandbox.client.post("/__sandbox/purge-deleted", json={"object": "Contact"}).json()["purged"] == [
        gone
    ]
    after = sandbox.client.get(f"{V}/sobjects/Contact/deleted/", params=window).json()
    assert after["deletedRecords"] == [] and after["earliestDateAvailable"] > start
    assert gone not in {r["Id"] for r in sandbox.records("SELECT Id FROM Contact", all_rows=True)}


def test_unbounded_queries_time_out_and_locators_expire_on_demand(sandbox: Sandbox) -> None:
    sandbox.client.post("/__sandbox/long-reads", json={"timeout_rows": 3, "locator_batches": 2})
    slow = sandbox.query("SELECT Id FROM Contact")
    assert slow.status_code == 400 and error_code(slow) == "QUERY_TIMEOUT"
    ids = [r["Id"] for r in sandbox.records("SELECT Id FROM Contact ORDER BY Id LIMIT 3")]
    narrow = sandbox.query(f"SELECT Id FROM Contact WHERE Id <= '{ids[2]}' ORDER BY Id")
    assert narrow.status_code == 200 and narrow.json()["totalSize"] == 3
    sandbox.client.post("/__sandbox/long-reads", json={"timeout_rows": None})
    first = sandbox.query(
        "SELECT Id FROM Task", all_rows=True, headers={"Sforce-Query-Options": "batchSize=200"}
    ).json()
    assert first["totalSize"] > 400
    second = sandbox.client.get(first["nextRecordsUrl"])
    assert second.status_code == 200
    third = sandbox.client.get(second.json()["nextRecordsUrl"])
    assert third.status_code == 400 and error_code(third) == "INVALID_QUERY_LOCATOR"
