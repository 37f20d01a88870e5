"""Injection, for every CRM, end to end over HTTP: hostile values (quotes, backslashes, SOQL/COQL
keywords, wildcards) in CRM records and in the task keys the product queries by; the queries succeed
and return exactly the right records. Config values that would reach a query as identifiers are
refused when the config loads.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.sandbox.server import SandboxOptions
from crm_upsell_connector.store.schema import accounts

from .faults_support import CRMS, CrmEnv, crm_env, run_pipeline, setup_fields

HOSTILE = [
    "O'Brien & Sons",
    "Back\\slash\\",
    "Quote\"d 'both'",
    "x' OR Name != '",
    "') or (id is not null",
    "a' OR Account_Name like '%",
    "%_wild*card",
    "semi; DROP TABLE accounts; --",
    "\\' OR 1=1 --",
    "Ünïcødé — 'ß' \\n",
]

NAME_FIELD = {
    "hubspot": ("companies", "name"),
    "salesforce": ("Account", "Name"),
    "zoho": ("Accounts", "Account_Name"),
}


def set_name(env: CrmEnv, account_id: str, name: str) -> None:
    module = env.state()
    otype, field = NAME_FIELD[env.crm]
    if env.crm == "hubspot":
        module.set_properties(otype, account_id, {field: name})
    else:
        module.set_fields(otype, account_id, {field: name})


def store_names(env: CrmEnv, session: Any) -> dict[str, str]:
    with session.engine.connect() as conn:
        rows = conn.execute(select(accounts.c.id, accounts.c.name).where(accounts.c.connection == "demo"))
        return {str(r.id): str(r.name) for r in rows}


@pytest.mark.parametrize("crm", CRMS)
async def test_hostile_values_in_records_and_task_keys(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=20, seed=51) as env:
        session = env.session()
        try:
            await setup_fields(session)
            await run_pipeline(session, apply=False)
            ids = sorted(store_names(env, session))
            hostile_names = dict(zip(ids, HOSTILE, strict=False))
            for account_id, name in hostile_names.items():
                set_name(env, account_id, name)

            # Read back exactly, and the whole pipeline runs over them.
            result = await run_pipeline(session)
            names = store_names(env, session)
            assert {i: names[i] for i in hostile_names} == hostile_names
            assert result.report.ok, result.report.failed

            # Task keys full of quotes and query keywords: created, then found exactly.
            owner = next(iter(result.plan.tasks)).owner_id if result.plan.tasks else None
            keys = [f"k{n}-{value}"[:60] for n, value in enumerate(HOSTILE)]
            drafts = [
                TaskDraft(
                    key=key,
                    account_id=ids[n % len(ids)],
                    owner_id=owner,
                    subject=f"Reliability {HOSTILE[n]}",
                    body=HOSTILE[n],
                    due=date(2030, 1, 1),
                )
                for n, key in enumerate(keys)
            ]
            decoys = [
                "k0-O'Brien",  # a prefix of a real key
                "k3-x' OR Name != '' OR Name = '",
                "%",
                "' OR Id != null OR Id = '",
                "') or (id is not null) or (id = '",
                "\\",
                "'",
            ]
            async with session.connector() as connector:
                created = await connector.create_tasks(drafts)
                assert [r.ok for r in created] == [True] * len(drafts), created
                crm_ids = {r.ref: r.crm_id for r in created}

                found = await connector.find_tasks(keys + decoys)
                assert found == crm_ids
                # One at a time, and none of the decoys matches anything.
                for key in keys[:4]:
                    assert await connector.find_tasks([key]) == {key: crm_ids[key]}
                assert await connector.find_tasks(decoys) == {}
                # The product's own keys still resolve next to the hostile ones.
                own = [t.key for t in result.plan.tasks]
                if own:
                    assert set(await connector.find_tasks(own + keys)) == set(own) | set(keys)
        finally:
            session.engine.dispose()


# ---- config values that become query identifiers ------------------------------------------------------

HOSTILE_IDENTIFIERS = [
    "Name FROM Account WHERE Id != null --",
    "Direction__c, (SELECT Id FROM Contacts)",
    "Tier__c' OR '1'='1",
    "Tier__c\\",
    "Tier__c; DELETE",
]

IDENTIFIER_SETTINGS = [
    ("salesforce", "product_extra_fields", lambda v: [v]),
    ("salesforce", "activity_direction_field", lambda v: v),
    ("salesforce", "meeting_outcome_field", lambda v: v),
    ("salesforce", "field_prefix", lambda v: v),
    ("hubspot", "property_prefix", lambda v: v),
    ("hubspot", "property_group", lambda v: v),
    ("zoho", "field_label_prefix", lambda v: v),
]


@pytest.mark.parametrize(("crm", "key", "shape"), IDENTIFIER_SETTINGS)
def test_config_values_that_reach_queries_are_refused_when_hostile(crm: str, key: str, shape: Any) -> None:
    plugin = load_plugins()[crm]
    base = dict(plugin.sandbox_settings("http://127.0.0.1:1", SandboxOptions(accounts=1)))
    plugin.settings_model.model_validate(base)
    for value in HOSTILE_IDENTIFIERS:
        with pytest.raises(ValidationError):
            plugin.settings_model.model_validate({**base, key: shape(value)})
