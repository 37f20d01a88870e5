"""Field-level security: which custom fields the integration user may read and edit.

A custom field created through the Tooling or Metadata API is visible to no one until field access
is granted: through a profile, or through a permission set assigned to the user whose
FieldPermissions grant ``PermissionsRead`` (and ``PermissionsEdit``). Salesforce applies this to
every API: a field not readable is unknown to SOQL (``INVALID_FIELD: No such column``) and to
describe; a field readable but not editable cannot be written (``INVALID_FIELD_FOR_INSERT_UPDATE``).
Documentation: Salesforce Help "Field-Level Security"
(https://help.salesforce.com/s/articleView?id=sf.admin_fls.htm), Object Reference "FieldPermissions"
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_fieldpermissions.htm) and "PermissionSetAssignment" (same guide,
sforce_api_objects_permissionsetassignment.htm).

The sandbox's integration user gets the scenario's own custom fields through its profile; fields
created later through the Tooling API are hidden until a permission set grants them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_upsell_salesforce.sandbox.schema import FieldDef
from crm_upsell_salesforce.sandbox.store import Rec, Table

__all__ = ["FieldAccess"]

Value = Callable[[str, Rec, str], Any]


class FieldAccess:
    """Read/edit access of one user to custom fields, from profile grants and assigned permission sets."""

    def __init__(self, tables: dict[str, Table], value: Value, user: Callable[[], str]) -> None:
        self._tables = tables
        self._value = value
        self._user = user
        self.profile: set[str] = set()  # "object.field" (lower case) granted read and edit by the profile
        self._granted: dict[str, bool] | None = None  # "object.field" -> editable, from permission sets

    def grant_profile(self, otype: str, fname: str) -> None:
        self.profile.add(f"{otype}.{fname}".lower())

    def invalidate(self) -> None:
        """Forget the computed grants (after a write to a permission set, its field permissions or
        assignments)."""
        self._granted = None

    def _grants(self) -> dict[str, bool]:
        if self._granted is not None:
            return self._granted
        value, user = self._value, self._user()
        assignments = self._tables["PermissionSetAssignment"]
        assigned = {
            value("PermissionSetAssignment", rec, "PermissionSetId")
            for rec in assignments.recs.values()
            if rec.deleted_ms is None and value("PermissionSetAssignment", rec, "AssigneeId") == user
        }
        granted: dict[str, bool] = {}
        for rec in self._tables["FieldPermissions"].recs.values():
            if rec.deleted_ms is not None or value("FieldPermissions", rec, "ParentId") not in assigned:
                continue
            if not value("FieldPermissions", rec, "PermissionsRead"):
                continue
            key = str(value("FieldPermissions", rec, "Field")).lower()
            granted[key] = granted.get(key, False) or bool(value("FieldPermissions", rec, "PermissionsEdit"))
        self._granted = granted
        return granted

    def readable(self, otype: str, fdef: FieldDef) -> bool:
        """Standard fields are always visible here; custom ones need a grant."""
        if not fdef.custom:
            return True
        key = f"{otype}.{fdef.name}".lower()
        return key in self.profile or key in self._grants()

    def editable(self, otype: str, fdef: FieldDef) -> bool:
        if not fdef.custom:
            return True
        key = f"{otype}.{fdef.name}".lower()
        return key in self.profile or self._grants().get(key, False)
