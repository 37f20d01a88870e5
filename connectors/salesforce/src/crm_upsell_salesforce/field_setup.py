"""Creating the product's custom fields with the Tooling API."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import (
    FieldSpec,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.access import FieldAccessMixin
from crm_upsell_salesforce.mapping import (
    custom_field,
)

log = logging.getLogger(__name__)


#: Where the product's fields live: tasks' custom fields are defined on Activity (Task and Event).
FIELD_OBJECTS = {"account": "Account", "task": "Activity"}


class FieldSetupMixin(FieldAccessMixin):
    """``ensure_fields``: the fields, then read/edit access to them for the integration user."""

    def _full_name(self, spec: FieldSpec) -> str:
        return f"{FIELD_OBJECTS[spec.object]}.{custom_field(self.settings.field_prefix, spec.name)}"

    async def _existing_fields(self, table: str) -> set[str]:
        """Developer names (without ``__c``) of the custom fields on ``table``, from the Tooling API."""
        query = soql.select(
            "CustomField", ("Id", "DeveloperName"), where=[soql.condition("TableEnumOrId", "=", table)]
        )
        names: set[str] = set()
        async for records, _nxt in self.client.query_pages(
            query, resource="tooling/query", endpoint="GET tooling/query CustomField"
        ):
            names.update(str(r.get("DeveloperName")).lower() for r in records)
        return names

    @staticmethod
    def _metadata(spec: FieldSpec) -> dict[str, Any]:
        meta: dict[str, Any] = {"label": spec.label[:40], "description": spec.description[:1000]}
        if spec.type == "number":
            meta.update(type="Number", precision=18, scale=2)
        elif spec.type == "string":
            meta.update(type="Text", length=255)
        elif spec.type == "text":
            meta.update(type="LongTextArea", length=32768, visibleLines=5)
        elif spec.type == "datetime":
            meta.update(type="DateTime")
        else:
            meta.update(
                type="Picklist",
                valueSet={
                    "valueSetDefinition": {"value": [{"fullName": o, "label": o} for o in spec.options]}
                },
            )
        return meta

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the missing custom fields with the Tooling API and grant the integration user read
        and edit on them (:mod:`.access`); returns the full names created and the grants made."""
        by_table: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_table.setdefault(FIELD_OBJECTS[spec.object], []).append(spec)
        created: list[str] = []
        for table, wanted in by_table.items():
            existing = await self._existing_fields(table)
            for spec in wanted:
                full = self._full_name(spec)
                developer = full.split(".", 1)[1].removesuffix("__c").lower()
                if developer in existing:
                    continue
                try:
                    await self.client.request(
                        "POST",
                        "tooling/sobjects/CustomField",
                        json={"FullName": full, "Metadata": self._metadata(spec)},
                        idempotent=True,  # a second create answers DUPLICATE_DEVELOPER_NAME
                        endpoint="POST tooling/sobjects/CustomField",
                    )
                except FatalAPIError as exc:
                    if exc.error_code != "DUPLICATE_DEVELOPER_NAME":
                        raise
                    continue
                created.append(full)
        # Fields created through the API are hidden from every profile until access is granted.
        grants: list[tuple[str, str]] = []
        for spec in specs:
            api = custom_field(self.settings.field_prefix, spec.name)
            objects = (
                ("Task", "Event")
                if FIELD_OBJECTS[spec.object] == "Activity"
                else (FIELD_OBJECTS[spec.object],)
            )
            grants.extend((o, api) for o in objects)
        changed = await self.grant_field_access(grants)
        if changed:
            # One line for what 'setup' reports (the details are logged by grant_field_access).
            created.append(
                f"field access through the permission set {self.permission_set} ({len(changed)} change(s))"
            )
        self._missing.clear()  # fields found missing before may exist now
        return created
