"""Field access for the integration user: the product's own permission set, created and assigned once.

Custom fields created through the Tooling API are visible to no profile until field access is
granted (Salesforce Help, "Field-Level Security"). ``setup`` therefore keeps a permission set of the
product's own (``<field_prefix>Connector``, e.g. ``Crm_Upsell_Connector``) whose FieldPermissions
grant read and edit on each product field, and assigns it to the user the connection acts as. Every
step looks before it writes, so running it again changes nothing.

Documentation: Object Reference "PermissionSet", "FieldPermissions" ("To grant a user access to a
field, associate a FieldPermissions record with a PermissionSet that's assigned to a user"; Field is
``SobjectType.FieldName``; PermissionsEdit requires PermissionsRead) and "PermissionSetAssignment"
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_fieldpermissions.htm and neighbours). Custom fields on Activity are granted on
Task and on Event, the two objects that carry them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crm_upsell_connector.errors import AuthError, ConnectorError, FatalAPIError
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.client import COLLECTION_LIMIT, error_code, error_text
from crm_upsell_salesforce.querying import QueryingBase

log = logging.getLogger(__name__)

PERMISSION_SET_LABEL = "CRM Upsell Connector"
#: Error codes that mean the integration user may not do this setup step itself.
_NOT_ALLOWED = frozenset(
    {
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    }
)
README = "connectors/salesforce/README.md"


def permission_set_name(field_prefix: str) -> str:
    """``Crm_Upsell_`` -> ``Crm_Upsell_Connector`` (a valid API name: the prefix ends with ``_``)."""
    return f"{field_prefix}Connector"


class FieldAccessMixin(QueryingBase):
    """``grant_field_access``: the product's permission set, its field permissions and its assignment."""

    @property
    def permission_set(self) -> str:
        return permission_set_name(self.settings.field_prefix)

    async def _rows(self, query: str, endpoint: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async for records, _nxt in self.client.query_pages(query, endpoint=endpoint):
            rows.extend(records)
        return rows

    async def _create(self, sobject: str, records: Sequence[dict[str, Any]], *, method: str = "POST") -> None:
        """Collections create/update of setup records; any record refused raises with what to do."""
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = [
                {"attributes": {"type": sobject}, **r} for r in records[start : start + COLLECTION_LIMIT]
            ]
            try:
                reply = await self.client.request(
                    method,
                    "composite/sobjects",
                    json={"allOrNone": True, "records": chunk},
                    idempotent=method == "PATCH",
                    endpoint=f"{method} composite/sobjects {sobject}",
                )
            except FatalAPIError as exc:
                raise self._refused(sobject, exc.error_code, exc.one_line()) from None
            for item in reply if isinstance(reply, list) else []:
                if isinstance(item, dict) and item.get("success") is not True:
                    errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
                    code = next((error_code(e) for e in errors), None)
                    raise self._refused(sobject, code, "; ".join(error_text(e) for e in errors))

    def _refused(self, sobject: str, code: str | None, text: str) -> ConnectorError:
        name = self.permission_set
        if sobject == "PermissionSetAssignment":
            hint = (
                f"the integration user may not assign permission sets: a Salesforce admin assigns the "
                f"permission set '{name}' to it (Setup > Users > the user > Permission Set "
                f"Assignments), then runs 'crm-upsell check'; see {README}"
            )
        else:
            hint = (
                "the integration user needs 'Manage Profiles and Permission Sets' and 'View Setup and "
                f"Configuration' to keep the permission set '{name}', or an admin grants read/edit on "
                f"the product's fields by hand; see {README}"
            )
        what = f"Salesforce refused to save {sobject} for field access: {text}"
        if code in _NOT_ALLOWED:
            return AuthError(what, hint=hint)
        return ConnectorError(what, hint=hint)

    async def _permission_set_id(self) -> tuple[str, bool]:
        name = self.permission_set
        query = soql.select("PermissionSet", ("Id", "Name"), where=[soql.condition("Name", "=", name)])
        rows = await self._rows(query, "GET query PermissionSet")
        if rows and rows[0].get("Id"):
            return str(rows[0]["Id"]), False
        description = "Read and edit on the fields crm-upsell-connector writes (kept by 'crm-upsell setup')."
        await self._create(
            "PermissionSet", [{"Name": name, "Label": PERMISSION_SET_LABEL, "Description": description}]
        )
        rows = await self._rows(query, "GET query PermissionSet")
        if not rows or not rows[0].get("Id"):
            raise ConnectorError(f"Salesforce did not keep the permission set '{name}'")
        return str(rows[0]["Id"]), True

    async def grant_field_access(self, fields: Sequence[tuple[str, str]]) -> list[str]:
        """Read and edit on each (sObject, field API name) through the product's permission set,
        assigned to the connection's user. Returns what changed (empty when everything was there).

        Raises :class:`AuthError` (with what an admin does by hand) where the integration user may
        not keep permission sets or assign them.
        """
        changed: list[str] = []
        ps_id, created = await self._permission_set_id()
        if created:
            changed.append(f"permission set {self.permission_set}")
        query = soql.select(
            "FieldPermissions",
            ("Id", "Field", "PermissionsRead", "PermissionsEdit"),
            where=[soql.condition("ParentId", "=", ps_id)],
        )
        have = {
            str(r.get("Field", "")).lower(): r for r in await self._rows(query, "GET query FieldPermissions")
        }
        new: list[dict[str, Any]] = []
        upgrade: list[dict[str, Any]] = []
        for sobject, field in fields:
            path = f"{sobject}.{field}"
            row = have.get(path.lower())
            if row is None:
                new.append(
                    {
                        "ParentId": ps_id,
                        "SobjectType": sobject,
                        "Field": path,
                        "PermissionsRead": True,
                        "PermissionsEdit": True,
                    }
                )
            elif not (row.get("PermissionsRead") and row.get("PermissionsEdit")):
                upgrade.append({"id": row["Id"], "PermissionsRead": True, "PermissionsEdit": True})
            else:
                continue
            changed.append(f"read/edit on {path}")
        if new:
            await self._create("FieldPermissions", new)
        if upgrade:
            await self._create("FieldPermissions", upgrade, method="PATCH")
        user = await self.client.auth.user_id()
        query = soql.select(
            "PermissionSetAssignment",
            ("Id",),
            where=[soql.condition("PermissionSetId", "=", ps_id), soql.condition("AssigneeId", "=", user)],
        )
        if not await self._rows(query, "GET query PermissionSetAssignment"):
            await self._create("PermissionSetAssignment", [{"PermissionSetId": ps_id, "AssigneeId": user}])
            changed.append(f"assignment of {self.permission_set} to the integration user")
        if changed:
            log.info("Salesforce field access: %s", "; ".join(changed))
        return changed
