"""``check``: credentials, read access per object and the product's fields."""

from __future__ import annotations

import logging

from crm_upsell_connector.connector import fields_check
from crm_upsell_connector.errors import ConnectorError
from crm_upsell_connector.fields import ACCOUNT_FIELDS
from crm_upsell_connector.models import (
    CheckResult,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.field_setup import FieldSetupMixin
from crm_upsell_salesforce.mapping import (
    SOBJECTS,
    custom_field,
)

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
        wanted: dict[str, tuple[list[str], str]] = {
            "Account": (
                [custom_field(self.settings.field_prefix, f.name) for f in ACCOUNT_FIELDS],
                "updateable",
            ),
            "Task": ([self.options.task_key_field], "createable"),
        }
        for sobject, (names, need) in wanted.items():
            try:
                checks.append(await self._access_check(sobject, names, need))
            except ConnectorError as exc:
                checks.append(CheckResult(item=f"fields on {sobject}", ok=False, detail=exc.one_line()))
        return checks

    async def _access_check(self, sobject: str, names: list[str], need: str) -> CheckResult:
        """The product's fields as the integration user sees them: the sObject describe lists only
        the fields field-level security lets it read, with ``createable``/``updateable`` as it may
        write them (REST API Developer Guide, "sObject Describe"). The Tooling API, which sees every
        field whatever its access, only tells a missing field from a hidden one."""
        item = f"fields on {sobject}"
        data = await self.client.get(
            f"sobjects/{sobject}/describe", endpoint=f"GET sobjects/{sobject}/describe"
        )
        described = {
            str(f.get("name", "")).lower(): f
            for f in (data.get("fields") if isinstance(data, dict) else None) or []
            if isinstance(f, dict)
        }
        unseen = [n for n in names if n.lower() not in described]
        readonly = [n for n in names if n.lower() in described and not described[n.lower()].get(need)]
        if unseen:
            table = "Activity" if sobject == "Task" else sobject
            existing = await self._existing_fields(table)
            missing = [n for n in unseen if n.removesuffix("__c").lower() not in existing]
            if missing:
                return fields_check(item, names, missing, "the 'Customize Application' permission")
            return CheckResult(
                item=item,
                ok=False,
                detail=f"{', '.join(unseen)} exist but the integration user cannot see them (field-level "
                f"security): run 'crm-upsell setup', which grants read/edit through the permission set "
                f"'{self.permission_set}', or see connectors/salesforce/README.md to grant it by hand",
            )
        if readonly:
            return CheckResult(
                item=item,
                ok=False,
                detail=f"{', '.join(readonly)} are read-only for the integration user (field-level "
                f"security): run 'crm-upsell setup' (permission set '{self.permission_set}') or give it "
                "edit access by hand",
            )
        return CheckResult(item=item, ok=True, detail=f"{len(names)} fields present, readable and writable")
