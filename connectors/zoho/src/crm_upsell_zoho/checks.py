"""The Zoho connector's set-up and checks: creating the product's fields, ``check`` and ``describe``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crm_upsell_connector.connector import fields_check
from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.errors import ConfigError, ConnectorError, FatalAPIError
from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.models import CheckResult, FieldSpec
from crm_upsell_zoho.client import PermissionDenied
from crm_upsell_zoho.fields_setup import FIELDS_PER_CALL, check_labels, create_fields, wrong_type_advice
from crm_upsell_zoho.mapping import MODULES, chunks
from crm_upsell_zoho.notes import NOTES_PERMISSION

if TYPE_CHECKING:
    pass
from crm_upsell_zoho.base import ZohoBase
from crm_upsell_zoho.line_items import ORDER_STREAMS

_CREATE_ATTEMPTS = 3


class ZohoChecks(ZohoBase):
    """Field set-up and checks."""

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the product's fields that are missing, at most five per ``POST /settings/fields``
        (see :mod:`crm_upsell_zoho.fields_setup`); returns the api_names created.

        Field by field: one field Zoho refuses does not stop the others, a field that failed for a
        passing reason is tried again, and a run cut short creates only what is still missing next
        time. A field that exists with the wrong type (a segment an earlier version made as text) is
        not touched: :class:`ConfigError` says what the administrator does.
        """
        by_module: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_module.setdefault("Accounts" if spec.object == "account" else "Tasks", []).append(spec)
        created: list[str] = []
        failures: list[str] = []
        advice: list[str] = []
        for module, wanted in by_module.items():
            check_labels(self.settings, wanted)
            existing = await self._fields_of(module)
            self._learn(module, existing)
            state = self._judge(wanted, existing)
            advice.extend(
                wrong_type_advice(module, self.settings.label_for(spec.label), has, spec)
                for spec, _, has in state.wrong_type
            )
            pending = list(state.missing)
            for _ in range(_CREATE_ATTEMPTS):
                if not pending:
                    break
                retry: list[FieldSpec] = []
                for chunk in chunks(pending, FIELDS_PER_CALL):
                    done, again, failed = await create_fields(self.client, self.settings, module, chunk)
                    created.extend(done)
                    retry.extend(again)
                    failures.extend(failed)
                pending = retry
            failures.extend(
                f"{self.settings.label_for(s.label)}: Zoho kept failing to create it" for s in pending
            )
            if state.missing:
                self._learn(module, await self._fields_of(module))
        if failures:
            raise FatalAPIError(
                "Zoho did not create every field ("
                + "; ".join(failures)
                + (f"); also: {'; '.join(advice)}" if advice else ")")
                + f"; created {len(created)}; run 'crm-upsell setup' again to create the rest"
            )
        if advice:
            raise ConfigError("; ".join(advice))
        return created

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        from crm_upsell_zoho.discover import describe

        return await describe(self, sample_size=sample_size, catalogue=catalogue)

    async def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        try:
            await self.client.request(
                "GET", "users", kind="users", params={"type": "CurrentUser"}, endpoint="GET users"
            )
        except ConnectorError as exc:
            return [CheckResult(item="credentials", ok=False, detail=exc.one_line())]
        checks.append(
            CheckResult(
                item="credentials",
                ok=True,
                detail=f"Zoho accepted the refresh token ({self.auth.api_domain or 'api'})",
            )
        )
        unused = {
            module
            for source, module, _ in ORDER_STREAMS.values()
            if source not in self.settings.owned_products
        }
        for module in dict.fromkeys(m for m in MODULES.values() if m not in unused):
            try:
                await self.client.request(
                    "GET",
                    module,
                    kind="records",
                    params={"fields": "Modified_Time", "per_page": 1},
                    endpoint=f"GET {module}",
                )
            except PermissionDenied as exc:
                detail = exc.one_line()
                if module == "Notes":
                    detail = f"the integration user may not list all notes: notes are skipped; give it {NOTES_PERMISSION}"
                checks.append(CheckResult(item=f"read {module}", ok=False, detail=detail))
            except ConnectorError as exc:
                detail = exc.one_line()
                if isinstance(exc, FatalAPIError) and exc.error_code == "INVALID_MODULE":
                    # An edition without Sales Orders / Invoices: the records API's INVALID_MODULE
                    # (zoho/crm-oas v8.0/record.json error codes).
                    detail = (
                        f"this org has no {module.replace('_', ' ')} module: owned products from it are "
                        "skipped; remove its source from owned_products, or use an edition that has it"
                    )
                checks.append(CheckResult(item=f"read {module}", ok=False, detail=detail))
            else:
                checks.append(CheckResult(item=f"read {module}", ok=True))
        wanted = {"Accounts": list(ACCOUNT_FIELDS), "Tasks": [TASK_KEY_FIELD]}
        for module, specs in wanted.items():
            item = f"fields on {module}"
            try:
                fields = await self._fields_of(module)
            except ConnectorError as exc:
                checks.append(CheckResult(item=item, ok=False, detail=exc.one_line()))
                continue
            self._learn(module, fields)
            state = self._judge(specs, fields)
            labels = [self.settings.label_for(s.label) for s in specs]
            missing = [self.settings.label_for(s.label) for s in state.missing]
            if state.wrong_type:
                advice = "; ".join(
                    wrong_type_advice(module, self.settings.label_for(s.label), has, s)
                    for s, _, has in state.wrong_type
                )
                if missing:
                    advice = f"missing {', '.join(missing)} (run 'crm-upsell setup'); {advice}"
                checks.append(CheckResult(item=item, ok=False, detail=advice))
            else:
                checks.append(fields_check(item, labels, missing, "the ZohoCRM.settings.fields.ALL scope"))
        return checks
