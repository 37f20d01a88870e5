"""``check`` for HubSpot: credentials, read access to every stream, the company currency and the
product's properties."""

from __future__ import annotations

from crm_upsell_connector.connector import fields_check
from crm_upsell_connector.errors import ConnectorError
from crm_upsell_connector.fields import ACCOUNT_FIELDS
from crm_upsell_connector.models import CheckResult
from crm_upsell_hubspot.property_setup import PropertySetup
from crm_upsell_hubspot.streams import STREAMS, HubSpotBase


class ChecksMixin(HubSpotBase):
    """``check`` (and the property names it compares with)."""

    setup: PropertySetup

    async def _property_names(self, object_type: str) -> set[str]:
        return set(await self.setup.definitions(object_type))

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            await self.client.get("/crm/v3/owners", {"limit": 1})
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        checks.append(
            CheckResult(
                item="credentials", ok=True, detail=f"HubSpot accepted the {self.settings.auth} credentials"
            )
        )
        for object_type in STREAMS:
            if object_type == "owners":
                checks.append(CheckResult(item="read owners", ok=True))
                continue
            try:
                await self.client.get(f"/crm/v3/objects/{object_type}", {"limit": 1})
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"read {object_type}", ok=False, detail=exc.one_line()))
            else:
                checks.append(CheckResult(item=f"read {object_type}", ok=True))
        try:
            code = await self.home_currency()
        except ConnectorError as exc:
            checks.append(CheckResult(item="company currency", ok=False, detail=exc.one_line()))
        else:
            detail = (
                f"amounts are compared in {code}" if code else "HubSpot did not say; set [tasks] currency"
            )
            checks.append(CheckResult(item="company currency", ok=code is not None, detail=detail))
        wanted = {
            "companies": [self.settings.property_prefix + f.name for f in ACCOUNT_FIELDS],
            "tasks": [self.options.task_key_property],
        }
        for object_type, names in wanted.items():
            item = f"fields on {object_type}"
            try:
                existing = await self._property_names(object_type)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            missing = [n for n in names if n not in existing]
            checks.append(fields_check(item, names, missing, "the crm.schemas.*.write scopes"))
        return checks
