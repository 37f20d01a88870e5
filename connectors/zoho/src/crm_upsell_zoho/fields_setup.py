"""The product's fields in Zoho CRM: what ``POST /settings/fields`` is sent, and how what exists is judged.

Rules from Zoho's v8 pages "Create Custom Fields"
(https://www.zoho.com/crm/developer/docs/api/v8/create-custom-field.html) and "Field Types: Data
Types and Length Limits" (https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html):

- at most :data:`FIELDS_PER_CALL` fields per call (the page's sibling "Update Custom Fields" states
  five per call, and Zoho's published request schema for creation caps the array at five);
- ``field_label`` at most :data:`LABEL_MAX` characters (the same schema), a ``tooltip`` needs both
  ``name`` and ``value`` (kept within :data:`TOOLTIP_MAX` characters);
- lengths per type: single line (``text``) up to 255, ``double`` up to 16 digits, a multi-line
  ``textarea`` sized by ``textarea.type`` (``large`` = 32,000 characters);
- a ``picklist`` lists ``pick_list_values`` as ``{display_value, actual_value}``: reps see (and filter
  list views by) the display value, the API writes the actual value.

Zoho does not change a field's data type once created ("Working with Custom Fields",
https://www.zoho.com/crm/help/customization/custom-fields.html: custom fields can be renamed, but
their field type cannot be changed), so a field an earlier version created with another type is
reported with what the administrator does, never converted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_upsell_connector.errors import ConfigError, FatalAPIError
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.models import FieldSpec
from crm_upsell_zoho.client import ZohoClient, data_of, zoho_error_fields
from crm_upsell_zoho.settings import ZohoSettings

__all__ = [
    "FIELDS_PER_CALL",
    "LABEL_MAX",
    "TOOLTIP_MAX",
    "FieldState",
    "check_labels",
    "create_fields",
    "field_body",
    "judge_fields",
    "wrong_type_advice",
]

#: Per-field codes another attempt will not fix.
NOT_RETRIABLE = frozenset(
    {"INVALID_DATA", "MANDATORY_NOT_FOUND", "NOT_SUPPORTED", "NO_PERMISSION", "LIMIT_EXCEEDED"}
)
FIELDS_PER_CALL = 5
LABEL_MAX = 25
TOOLTIP_MAX = 255
TEXT_MAX = 255
#: spec type -> the Zoho data_type created for it.
DATA_TYPES: dict[str, str] = {
    "number": "double",
    "string": "text",
    "text": "textarea",
    "datetime": "datetime",
    "enumeration": "picklist",
}
#: spec type -> the Zoho data types that hold it well enough (an admin may have made it by hand).
ACCEPTED: dict[str, frozenset[str]] = {
    "number": frozenset({"double", "decimal", "currency", "integer", "bigint", "percent"}),
    "string": frozenset({"text", "textarea"}),
    "text": frozenset({"textarea"}),
    "datetime": frozenset({"datetime"}),
    "enumeration": frozenset({"picklist"}),
}
#: Zoho's names for data types, as the field editor shows them.
SHOWN: dict[str, str] = {
    "text": "Single Line",
    "textarea": "Multi Line",
    "double": "Decimal",
    "decimal": "Decimal",
    "integer": "Number",
    "datetime": "Date/Time",
    "date": "Date",
    "picklist": "Pick List",
    "boolean": "Checkbox",
}


def field_body(spec: FieldSpec, label: str) -> dict[str, Any]:
    """One entry of ``POST /settings/fields?module=...`` for ``spec`` under ``label``."""
    body: dict[str, Any] = {"field_label": label, "data_type": DATA_TYPES[spec.type]}
    if spec.description:
        body["tooltip"] = {"name": "static_text", "value": spec.description[:TOOLTIP_MAX]}
    if spec.type == "number":
        body.update({"length": 16, "decimal_place": 2})
    elif spec.type == "string":
        body["length"] = TEXT_MAX
    elif spec.type == "text":
        body["textarea"] = {"type": "large"}
    elif spec.type == "enumeration":
        labels = spec.option_labels if len(spec.option_labels) == len(spec.options) else spec.options
        body["pick_list_values"] = [
            {"display_value": shown, "actual_value": value}
            for value, shown in zip(spec.options, labels, strict=True)
        ]
    return body


@dataclass(frozen=True)
class FieldState:
    """What a module has of the product's fields (specs matched by label, then by api_name)."""

    present: dict[str, str]  # spec name -> api_name
    missing: list[FieldSpec]
    wrong_type: list[tuple[FieldSpec, str, str]]  # (spec, api_name, data_type it has)


def judge_fields(
    specs: Sequence[FieldSpec],
    existing: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    api_names: Mapping[str, str],
) -> FieldState:
    """Sort ``specs`` into present / missing / wrong type against ``GET /settings/fields``'s answer;
    ``labels`` and ``api_names`` give each spec's Zoho label and derived api_name by spec name."""
    by_label = {str(f.get("field_label") or "").strip().lower(): f for f in existing}
    by_api = {str(f.get("api_name") or "").lower(): f for f in existing}
    present: dict[str, str] = {}
    missing: list[FieldSpec] = []
    wrong: list[tuple[FieldSpec, str, str]] = []
    for spec in specs:
        found = by_label.get(labels[spec.name].lower()) or by_api.get(api_names[spec.name].lower())
        if found is None:
            missing.append(spec)
            continue
        api_name = str(found.get("api_name"))
        data_type = str(found.get("data_type") or "")
        if data_type not in ACCEPTED[spec.type]:
            wrong.append((spec, api_name, data_type))
        present[spec.name] = api_name
    return FieldState(present, missing, wrong)


def wrong_type_advice(module: str, label: str, has: str, spec: FieldSpec) -> str:
    """What the administrator does about a field of the wrong type (Zoho cannot change it)."""
    wanted = SHOWN.get(DATA_TYPES[spec.type], DATA_TYPES[spec.type])
    shown = SHOWN.get(has, has or "another type")
    return (
        f"the {module} field '{label}' is a {shown} field but must be a {wanted} field, and Zoho cannot "
        f"change a field's type: in Zoho CRM open Setup > Customization > Modules and Fields > {module}, "
        f"delete '{label}' (crm-upsell rewrites its values on the next run), then run 'crm-upsell setup' "
        "again to create it as a "
        f"{wanted}"
    )


def check_labels(settings: ZohoSettings, specs: Sequence[FieldSpec]) -> None:
    """A :class:`ConfigError` naming the labels longer than Zoho allows."""
    too_long = [settings.label_for(s.label) for s in specs if len(settings.label_for(s.label)) > LABEL_MAX]
    if too_long:
        raise ConfigError(
            f"Zoho field labels are at most {LABEL_MAX} characters; too long: {', '.join(too_long)}",
            hint="choose a shorter field_label_prefix in the connection settings",
        )


async def create_fields(
    client: ZohoClient, settings: ZohoSettings, module: str, specs: list[FieldSpec]
) -> tuple[list[str], list[FieldSpec], list[str]]:
    """One ``POST /settings/fields`` of at most five fields: (api_names created, specs to try
    again, failures that another try will not fix)."""
    bodies = [field_body(s, settings.label_for(s.label)) for s in specs]
    status, reply = await client.request(
        "POST",
        "settings/fields",
        kind="fields",
        params={"module": module},
        json_body={"fields": bodies},
        idempotent=True,  # a replay answers DUPLICATE_DATA, which counts as present
        ok_statuses=(400,),
    )
    results = data_of(reply, "fields") or data_of(reply)
    if not results:
        code, message, _ = zoho_error_fields(reply)
        raise FatalAPIError(f"Zoho did not create the {module} fields: {code or f'HTTP {status}'}: {message}")
    created: list[str] = []
    again: list[FieldSpec] = []
    failures: list[str] = []
    for spec, result in zip(specs, results, strict=False):
        code = str(result.get("code") or "")
        details = result.get("details") if isinstance(result.get("details"), dict) else {}
        label = settings.label_for(spec.label)
        if code == "SUCCESS" or str(result.get("status")) == "success":
            created.append(str((details or {}).get("api_name") or settings.api_name(spec.label)))
        elif code == "DUPLICATE_DATA":
            continue  # created by an earlier attempt whose answer was lost
        elif code in NOT_RETRIABLE:
            where = (details or {}).get("api_name") or (details or {}).get("json_path")
            failures.append(
                f"{label}: {code}: {scrub(str(result.get('message') or ''))}"
                + (f" ({scrub(str(where))})" if where else "")
            )
        else:
            again.append(spec)
    return created, again, failures
