"""The Zoho sandbox's "Get Record Count" over real HTTP on loopback."""

from __future__ import annotations

import httpx
from crm_upsell_zoho.sandbox import create_app, delete, sandbox_state

from crm_upsell_connector.sandbox import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer

AUTH = {"Authorization": "Zoho-oauthtoken sandbox-token"}


async def test_record_count_counts_live_records_and_refuses_what_it_cannot_answer() -> None:
    scenario = build_scenario(40, seed=3)
    app = create_app(scenario, SandboxOptions(accounts=40))
    with SandboxServer(app) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
            r = await client.get("/crm/v8/Accounts/actions/count")
            assert r.status_code == 200 and r.json() == {"count": len(scenario.companies)}
            first = str(min(sandbox_state(app).org.tables["Accounts"].recs))
            delete(app, "Accounts", [first])  # a deleted record is in the recycle bin, not counted
            r = await client.get("/crm/v8/Accounts/actions/count")
            assert r.json() == {"count": len(scenario.companies) - 1}
            r = await client.get("/crm/v8/Nope/actions/count")
            assert r.status_code == 400 and r.json()["code"] == "INVALID_MODULE"
            r = await client.get("/crm/v8/Accounts/actions/count", params={"criteria": "(Rating:equals:Hot)"})
            assert r.status_code == 400 and r.json()["details"]["param_name"] == "criteria"
            r = await client.get("/crm/v8/Accounts/actions/count", headers={"Authorization": "x"})
            assert r.status_code == 401
