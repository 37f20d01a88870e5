"""Tooling API: CustomField rows and their creation."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    Fail,
)
from crm_upsell_salesforce.sandbox.schema import (
    field_from_metadata,
)


class ToolingApi(OrgBase):
    """``tooling/sobjects/CustomField``."""

    # -- Tooling API: CustomField

    def create_custom_field(self, request: Request, body: Any) -> Response:
        kind = str(request.path_params["sobject"])
        if kind != "CustomField":
            raise Fail(404, "NOT_FOUND", f"The requested resource does not exist: tooling sObject {kind}")
        if not isinstance(body, dict):
            raise Fail(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        full_name = str(body.get("FullName") or "")
        metadata = body.get("Metadata")
        if not isinstance(metadata, dict):
            raise Fail(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]")
        match = re.fullmatch(
            r"([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*)__c", full_name
        )
        if match is None or len(match.group(2)) > 40:
            raise Fail(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"FullName '{full_name}' must look like Object.Field_Name__c (letters, digits and single "
                "underscores, at most 40 characters before __c)",
            )
        table_enum = next(
            (n for n in (*self.schema, "Activity") if n.lower() == match.group(1).lower()), None
        )
        if table_enum is None:
            raise Fail(400, "FIELD_INTEGRITY_EXCEPTION", f"Unknown object in FullName: {match.group(1)}")
        developer_name = match.group(2)
        targets = ["Task", "Event"] if table_enum == "Activity" else [table_enum]
        rows = self.tooling_tables["CustomField"]
        for rec in rows.recs.values():
            over = rec.over or {}
            same_table = over.get("TableEnumOrId") in (table_enum, "Activity") or (
                table_enum == "Activity" and over.get("TableEnumOrId") in targets
            )
            if same_table and str(over.get("DeveloperName", "")).lower() == developer_name.lower():
                raise Fail(
                    400,
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {developer_name} on {table_enum}.",
                )
        if any(self.schema[t].field(f"{developer_name}__c") is not None for t in targets):
            raise Fail(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {developer_name} on {table_enum}.",
            )
        fdef = field_from_metadata(f"{developer_name}__c", metadata)
        for t in targets:
            self.schema[t].add(fdef)
        rec = self._add_custom_field_row(table_enum, developer_name, self.now_ms())
        if metadata.get("description"):
            assert rec.over is not None
            rec.over["Description"] = str(metadata["description"])
        return JSONResponse(
            {"id": rec.id, "success": True, "errors": [], "warnings": [], "infos": []}, status_code=201
        )
