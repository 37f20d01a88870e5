"""Field-level security as a real org applies it: fields created through the API are hidden until
``setup`` grants them through the product's permission set, and ``check`` sees what the user sees."""

from __future__ import annotations

import pytest
from crm_upsell_salesforce.access import permission_set_name

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.fields import ACCOUNT_FIELDS, ALL_FIELDS
from crm_upsell_connector.models import Account, FieldUpdate

from .conftest import Org


def _values() -> dict[str, str]:
    values = {f.name: "" for f in ACCOUNT_FIELDS}
    values.update(loyalty_score="71", segment="champion", reason="uses 46 of 50 seats")
    return values


async def _create_fields_only(org: Org) -> None:
    """What an older setup did: the fields through the Tooling API, no access for anyone."""
    c = org.connector()
    try:
        for spec in ALL_FIELDS:
            await c.client.request(
                "POST",
                "tooling/sobjects/CustomField",
                json={"FullName": c._full_name(spec), "Metadata": c._metadata(spec)},
                endpoint="POST tooling/sobjects/CustomField",
            )
    finally:
        await c.close()


async def test_fields_hidden_by_field_security_fail_check_and_writes_then_setup_alone_fixes_them(
    org: Org,
) -> None:
    await _create_fields_only(org)
    c = org.connector()
    try:
        checks = {r.item: r for r in await c.check()}
        assert not checks["fields on Account"].ok
        assert "cannot see them" in checks["fields on Account"].detail
        assert not checks["fields on Task"].ok
        account_id = org.live("Account")[0]
        (result,) = await c.update_accounts([FieldUpdate(account_id=account_id, values=_values())])
        assert not result.ok and "INVALID_FIELD" in (result.error or "")
        # A hidden key field is never read as "no task of ours exists", hidden fields never as empty.
        with pytest.raises(ConfigError, match="task key field"):
            await c.find_tasks(["some-key"])
        with pytest.raises(ConfigError, match="field-level security"):
            [p async for p in c.read("accounts", None)]

        made = await c.ensure_fields(ALL_FIELDS)
        assert made == [
            f"field access through the permission set {permission_set_name('Crm_Upsell_')} (10 change(s))"
        ]
        assert await c.ensure_fields(ALL_FIELDS) == []
        checks = {r.item: r for r in await c.check()}
        assert all(r.ok for r in checks.values()), [r for r in checks.values() if not r.ok]
        (result,) = await c.update_accounts([FieldUpdate(account_id=account_id, values=_values())])
        assert result.ok, result.error
        accounts = [r for p in [p async for p in c.read("accounts", None)] for r in p.records]
        after = next(a for a in accounts if a.id == account_id)
        assert isinstance(after, Account) and after.product_fields["segment"] == "champion"
        assert await c.find_tasks(["some-key"]) == {}
    finally:
        await c.close()
    # A second process (new connector) finds everything in place: nothing created twice.
    again = org.connector()
    try:
        assert await again.ensure_fields(ALL_FIELDS) == []
    finally:
        await again.close()
    assert len(org.live("PermissionSet")) == 1 and len(org.live("PermissionSetAssignment")) == 1


async def test_before_setup_check_says_fields_are_missing_not_hidden(org: Org) -> None:
    c = org.connector()
    try:
        checks = {r.item: r for r in await c.check()}
    finally:
        await c.close()
    assert not checks["fields on Account"].ok and "missing" in checks["fields on Account"].detail
    assert "run 'crm-upsell setup'" in checks["fields on Account"].detail
