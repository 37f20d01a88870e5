"""HubSpot shows a task's notes as rich text: the body goes as HTML, every value escaped."""

from __future__ import annotations

from datetime import date

import httpx
from crm_upsell_hubspot.connector import HubSpotConnector

from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import Account, TaskDraft

from .test_connector_sandbox import Running, connector, records, sandbox

__all__ = ["connector", "sandbox"]  # the sandbox and connector fixtures, shared

BODY = (
    "Propose CRM Professional to <b>Acme</b> & Co (Upgrade).\n\n"
    "Why now: uses 46 of its 50 seats (92%)\n\n"
    "What we know:\n- 8 meetings in the last 90 days\n- customer for 3 years\n\n"
    "Offer: <script>alert(1)</script>"
)


async def test_the_task_body_is_html_with_every_value_escaped(
    sandbox: Running, connector: HubSpotConnector
) -> None:
    await connector.ensure_fields(ALL_FIELDS)
    account = next(r for r in await records(connector, "companies") if isinstance(r, Account))
    draft = TaskDraft(
        key="html-1", account_id=account.id, owner_id=None, subject="s", body=BODY, due=date(2026, 12, 1)
    )
    (result,) = await connector.create_tasks([draft])
    assert result.ok

    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {sandbox.options.token}"}
    ) as raw:
        response = await raw.get(
            f"/crm/v3/objects/tasks/{result.crm_id}", params={"properties": "hs_task_body"}
        )
    body = response.json()["properties"]["hs_task_body"]

    assert body.startswith("<p>Propose CRM Professional to &lt;b&gt;Acme&lt;/b&gt; &amp; Co (Upgrade).</p>")
    assert (
        "<p>What we know:</p><ul><li>8 meetings in the last 90 days</li><li>customer for 3 years</li></ul>"
        in body
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>" not in body and "<script>" not in body
