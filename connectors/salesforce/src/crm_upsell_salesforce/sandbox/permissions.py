"""Rules of the setup objects behind field-level security: PermissionSet, FieldPermissions and
PermissionSetAssignment, written through sObject Collections like any record.

Each rule cites the Object Reference page it comes from
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/<page>).
Where the documentation names no error code, the code is the one Salesforce answers for the same
class of fault elsewhere (duplicates: ``DUPLICATE_VALUE``; restricted picklists:
``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``).
"""

from __future__ import annotations

import re
from typing import Any

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import record_error
from crm_upsell_salesforce.sandbox.store import Rec

__all__ = ["PermissionsApi"]

# PermissionSet.Name is an API name: letters, digits and single underscores, starting with a letter
# (sforce_api_objects_permissionset.htm, "Name").
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")


class PermissionsApi(OrgBase):
    """Checks writes to the permission setup objects before Collections saves them."""

    def setup_rule(
        self, otype: str, values: dict[str, Any], rec: Rec | None, pending: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        if otype == "PermissionSet":
            return self._permission_set(values, rec, pending)
        if otype == "FieldPermissions":
            return self._field_permissions(values, rec, pending)
        if otype == "PermissionSetAssignment":
            return self._assignment(values, pending)
        return None

    def _merged(self, otype: str, values: dict[str, Any], rec: Rec | None) -> dict[str, Any]:
        if rec is None:
            return values
        sobj = self.schema[otype]
        return {**{f.name: self.value(otype, rec, f.name) for f in sobj.fields.values()}, **values}

    def _others(self, otype: str, rec: Rec | None) -> list[Rec]:
        return [r for r in self.tables[otype].recs.values() if r.deleted_ms is None and r is not rec]

    def _permission_set(
        self, values: dict[str, Any], rec: Rec | None, pending: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        name = str(self._merged("PermissionSet", values, rec).get("Name") or "")
        if not _API_NAME.fullmatch(name):
            return record_error(
                "INVALID_FIELD",
                f"The API Name {name!r} can only contain underscores and alphanumeric characters, must "
                "begin with a letter, not include spaces, not end with an underscore, and not contain "
                "two consecutive underscores.",
                ["Name"],
            )
        taken = {
            str(self.value("PermissionSet", r, "Name")).lower() for r in self._others("PermissionSet", rec)
        }
        taken |= {str(p.get("Name", "")).lower() for p in pending}
        if name.lower() in taken:
            return record_error(
                "DUPLICATE_DEVELOPER_NAME", "The API Name you entered is already in use.", ["Name"]
            )
        return None

    def _field_permissions(
        self, values: dict[str, Any], rec: Rec | None, pending: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        merged = self._merged("FieldPermissions", values, rec)
        sobject = str(merged.get("SobjectType") or "")
        field_path = str(merged.get("Field") or "")
        # "Field: The field's API name. This name must be prefixed with the SobjectType"
        # (sforce_api_objects_fieldpermissions.htm); both are restricted picklists.
        target = self.schema.get(sobject)
        obj, _, fname = field_path.partition(".")
        fdef = target.field(fname) if target is not None and obj == sobject else None
        if target is None or fdef is None or not fdef.custom or fdef.required:
            return record_error(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"bad value for restricted picklist field: {field_path}",
                ["Field"],
            )
        # "PermissionsEdit ... Requires PermissionsRead for the same field to be true."
        if merged.get("PermissionsEdit") and not merged.get("PermissionsRead"):
            return record_error(
                "FIELD_INTEGRITY_EXCEPTION",
                "Permission Edit depends on permission(s): Read",
                ["PermissionsEdit"],
            )
        parent = merged.get("ParentId")
        key = (parent, f"{sobject}.{fdef.name}".lower())
        existing = {
            (
                self.value("FieldPermissions", r, "ParentId"),
                str(self.value("FieldPermissions", r, "Field")).lower(),
            )
            for r in self._others("FieldPermissions", rec)
        }
        existing |= {(p.get("ParentId"), str(p.get("Field", "")).lower()) for p in pending}
        if key in existing:
            return record_error(
                "DUPLICATE_VALUE",
                f"duplicate value found: Field duplicates value on record with id: {parent}",
                [],
            )
        return None

    def _assignment(self, values: dict[str, Any], pending: list[dict[str, Any]]) -> dict[str, Any] | None:
        # One assignment per user and permission set (sforce_api_objects_permissionsetassignment.htm).
        key = (values.get("AssigneeId"), values.get("PermissionSetId"))
        existing = {
            (
                self.value("PermissionSetAssignment", r, "AssigneeId"),
                self.value("PermissionSetAssignment", r, "PermissionSetId"),
            )
            for r in self._others("PermissionSetAssignment", None)
        }
        existing |= {(p.get("AssigneeId"), p.get("PermissionSetId")) for p in pending}
        if key in existing:
            return record_error(
                "DUPLICATE_VALUE",
                f"Duplicate PermissionSetAssignment. Assignee: {key[0]}; Permission Set: {key[1]}",
                [],
            )
        return None
