"""``check``: credentials, read access per object and the product's fields."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crm_upsell_connector.connector import fields_check
from crm_upsell_connector.errors import ConnectorError
from crm_upsell_connector.fields import ACCOUNT_FIELDS
from crm_upsell_connector.models import (
    CheckResult,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.mapping import (
    SOBJECTS,
    custom_field,
)

if TYPE_CHECKING:
    pass

from crm_upsell_salesforce.field_setup import FieldSetupMixin

log = logging.getLogger(__name__)


class ChecksMixin(FieldSetupMixin):
    """``check``."""

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            limits = await self.client.get("limits", endpoint="GET limits")
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        detail = f"Salesforce accepted the {self.settings.auth} credentials"
        if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
            detail += (
                f"; {daily['Remaining']} of {daily['Max']} daily API calls left, a run uses at most "
                f"{self.settings.daily_api_share:.0%} of them"
            )
        checks.append(CheckResult(item="credentials", ok=True, detail=detail))
        for stream, sobject in SOBJECTS.items():

            def probe(fields: tuple[str, ...], sobject: str = sobject) -> str:
                return soql.select(sobject, fields, limit=1)

            try:
                async for _batch in self._query(stream, probe, endpoint=f"GET query {sobject} check"):
                    break
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"read {sobject}", ok=False, detail=exc.one_line()))
                continue
            mapped = {api.lower(): api for _, api in self.options.account_fields}
            absent = [mapped[f] for f in self._missing.get(stream, set()) if f in mapped]
            if absent:
                checks.append(
                    CheckResult(
                        item=f"read {sobject}",
                        ok=False,
                        detail=f"the mapped fields {', '.join(sorted(absent))} do not exist or are hidden "
                        "from the integration user (field-level security); they read as empty",
                    )
                )
            else:
                checks.append(CheckResult(item=f"read {sobject}", ok=True))
        wanted: dict[str, list[str]] = {
            "Account": [custom_field(self.settings.field_prefix, f.name) for f in ACCOUNT_FIELDS],
            "Activity": [self.options.task_key_field],
        }
        for table, names in wanted.items():
            item = f"fields on {table}"
            try:
                existing = await self._existing_fields(table)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            missing = [n for n in names if n.removesuffix("__c").lower() not in existing]
            checks.append(fields_check(item, names, missing, "the 'Customize Application' permission"))
        return checks
