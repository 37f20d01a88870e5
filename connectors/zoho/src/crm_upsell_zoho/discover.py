"""``describe`` for Zoho CRM: Accounts and Tasks fields, a sample's fill counts, products, users.

Fields come from the Fields Metadata API (``GET /crm/v8/settings/fields?module=...``: each field has
``api_name``, ``field_label``, ``data_type``, ``read_only`` and ``custom_field``;
https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html). The sample is read with Get Records
(``GET /crm/v8/{module}``: ``fields`` is required and takes at most 50 api names, ``per_page`` at
most 200; https://www.zoho.com/crm/developer/docs/api/v8/get-records.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_upsell_connector.discovery import (
    ESSENTIAL_OBJECTS,
    CrmField,
    CrmObject,
    CrmSchema,
    FieldKind,
    ObjectName,
    fill_counts,
    read_products_and_owners,
)
from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_zoho.client import PAGE_LIMIT, data_of

if TYPE_CHECKING:
    from crm_upsell_zoho.base import ZohoBase

#: ``data_type`` -> canonical kind (the data types listed on the fields metadata page above).
_KINDS: dict[str, FieldKind] = {
    "integer": "number",
    "bigint": "number",
    "double": "number",
    "decimal": "number",
    "currency": "number",
    "percent": "number",
    "autonumber": "string",
    "text": "string",
    "email": "string",
    "phone": "string",
    "website": "string",
    "textarea": "text",
    "boolean": "bool",
    "picklist": "enumeration",
    "multiselectpicklist": "enumeration",
    "date": "date",
    "datetime": "datetime",
    "lookup": "reference",
    "ownerlookup": "reference",
}
_OBJECTS: dict[ObjectName, str] = {
    "account": "Accounts",
    "task": "Tasks",
    "contact": "Contacts",
    "deal": "Deals",
}
_FIELDS_PER_CALL = 50
# Types Get Records cannot return in a plain ``fields`` list.
_NOT_SAMPLED = ("subform", "multiselectlookup", "fileupload", "imageupload", "profileimage")


def _field(raw: dict[str, Any]) -> CrmField:
    crm_type = str(raw.get("data_type") or "")
    return CrmField(
        name=str(raw.get("api_name")),
        label=str(raw.get("field_label") or ""),
        kind=_KINDS.get(crm_type, "other"),
        crm_type=crm_type,
        writable=not bool(raw.get("read_only")) and crm_type not in ("autonumber", "formula"),
        custom=bool(raw.get("custom_field")),
    )


async def _sample(connector: ZohoBase, names: list[str], size: int) -> tuple[int, dict[str, int]]:
    merged: dict[str, dict[str, Any]] = {}
    for i in range(0, len(names), _FIELDS_PER_CALL):
        chunk = names[i : i + _FIELDS_PER_CALL]
        _, body = await connector.client.request(
            "GET",
            "Accounts",
            kind="records",
            params={"fields": ",".join(chunk), "per_page": min(size, PAGE_LIMIT), "sort_by": "id"},
            endpoint="GET Accounts (sample)",
        )
        for raw in data_of(body):
            merged.setdefault(str(raw.get("id")), {}).update(raw)
    return len(merged), fill_counts(list(merged.values()), names)


async def describe(connector: ZohoBase, *, sample_size: int, catalogue: bool) -> CrmSchema:
    objects: list[CrmObject] = []
    labels: dict[ObjectName, dict[str, str]] = {}
    for obj, module in _OBJECTS.items():
        if obj not in ESSENTIAL_OBJECTS and not catalogue:
            continue
        raw_fields = await connector._fields_of(module)
        if obj in ESSENTIAL_OBJECTS:  # the connector keeps the names of these for its reads and writes
            connector._learn(module, raw_fields)
        fields = [_field(f) for f in raw_fields]
        labels[obj] = {f.label.strip().lower(): f.name for f in fields}
        sampled = 0
        if obj == "account" and sample_size > 0:
            names = [f.name for f in fields if f.crm_type not in _NOT_SAMPLED]
            sampled, counts = await _sample(connector, names, min(sample_size, PAGE_LIMIT))
            fields = [f.model_copy(update={"filled": counts.get(f.name)}) for f in fields]
        objects.append(CrmObject(object=obj, crm_name=module, fields=fields, sampled=sampled))
    # Configured names match api_names without regard to case (``nps_score`` reads ``NPS_Score``).
    by_lower = {f.name.lower(): f.name for f in objects[0].fields}
    settings = connector.settings
    products, owners = await read_products_and_owners(connector) if catalogue else (None, None)
    return CrmSchema(
        crm="zoho",
        objects=objects,
        products=products,
        owners=owners,
        mapped={name: by_lower.get(name.lower()) for name in connector.context.account_fields},
        # The product's fields are found by their label: Zoho chooses their api_names at creation.
        product_fields={
            "account": {
                s.name: labels["account"].get(settings.label_for(s.label).lower()) for s in ACCOUNT_FIELDS
            },
            "task": {
                TASK_KEY_FIELD.name: labels["task"].get(settings.label_for(TASK_KEY_FIELD.label).lower())
            },
        },
    )
