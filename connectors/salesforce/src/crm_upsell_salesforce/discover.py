"""``describe`` for Salesforce: Account and Task fields, a sample's fill counts, products, users.

Fields come from the sObject Describe resource (``GET /services/data/vXX.X/sobjects/{sObject}/describe``:
each field has ``name``, ``label``, ``type``, ``updateable``, ``calculated`` and ``custom``;
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm).
Fields the integration user cannot see through field-level security are left out of it, so a field
hidden from the user reads as missing, which is what a sync would see too. The product's task field
is created on Activity (``setup``); Activity custom fields show on Task, and the Task describe is read
here (no documentation page says this in so many words: where the field is not found on Task, check
says to run setup, which is harmless when the field exists).

The sample is SOQL with ``LIMIT``, sent as a GET whose URI and headers must stay under 16,384 bytes
(https://help.salesforce.com/s/articleView?id=000386264&type=1; SOQL itself allows 100,000
characters: https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_soslsoql.htm),
so the fields are asked for in queries of at most about 4,000 characters each.
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
from crm_upsell_salesforce import soql

if TYPE_CHECKING:
    from crm_upsell_salesforce.connector import SalesforceConnector

#: Describe ``type`` -> canonical kind (the field types of the SOAP/REST API data types page).
_KINDS: dict[str, FieldKind] = {
    "double": "number",
    "currency": "number",
    "percent": "number",
    "int": "number",
    "long": "number",
    "string": "string",
    "email": "string",
    "phone": "string",
    "url": "string",
    "combobox": "string",
    "textarea": "text",
    "boolean": "bool",
    "picklist": "enumeration",
    "multipicklist": "enumeration",
    "date": "date",
    "datetime": "datetime",
    "reference": "reference",
    "id": "reference",
}
_OBJECTS: dict[ObjectName, str] = {
    "account": "Account",
    "task": "Task",
    "contact": "Contact",
    "deal": "Opportunity",
}
# A sample query's field list stays under this many characters (the URI limit above, with room).
_QUERY_CHARS = 4000
_SAMPLE_MAX = 2000


def _chunks(names: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    length = 0
    for name in names:
        if chunks[-1] and length + len(name) + 1 > _QUERY_CHARS:
            chunks.append([])
            length = 0
        chunks[-1].append(name)
        length += len(name) + 1
    return [c for c in chunks if c]


def _selectable(name: str) -> bool:
    """A name SOQL can select (the query builder checks every name it is given)."""
    try:
        soql.name(name)
    except ValueError:
        return False
    return True


def _field(raw: dict[str, Any]) -> CrmField:
    crm_type = str(raw.get("type") or "")
    return CrmField(
        name=str(raw.get("name")),
        label=str(raw.get("label") or ""),
        kind=_KINDS.get(crm_type, "other"),
        crm_type=crm_type,
        writable=bool(raw.get("updateable")) and not bool(raw.get("calculated")),
        custom=bool(raw.get("custom")),
    )


async def _sample(connector: SalesforceConnector, names: list[str], size: int) -> tuple[int, dict[str, int]]:
    merged: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(names):
        query = soql.select("Account", ("Id", *chunk), order_by=("Id",), limit=min(size, _SAMPLE_MAX))
        async for records, _next in connector.client.query_pages(
            query, endpoint="GET query Account (sample)"
        ):
            for raw in records:
                flat = {str(k).lower(): v for k, v in raw.items()}
                merged.setdefault(str(flat.get("id")), {}).update(flat)
            break  # one batch holds the whole sample
    counts = fill_counts(list(merged.values()), [n.lower() for n in names])
    return len(merged), {n: counts[n.lower()] for n in names}


async def describe(connector: SalesforceConnector, *, sample_size: int, catalogue: bool) -> CrmSchema:
    objects: list[CrmObject] = []
    for obj, sobject in _OBJECTS.items():
        if obj not in ESSENTIAL_OBJECTS and not catalogue:
            continue
        reply = await connector.client.get(f"sobjects/{sobject}/describe", endpoint=f"GET describe {sobject}")
        raw_fields = reply.get("fields", []) if isinstance(reply, dict) else []
        fields = [_field(f) for f in raw_fields if isinstance(f, dict)]
        sampled = 0
        if obj == "account" and sample_size > 0:
            # Compound fields (address, location) cannot be selected beside their components.
            names = [
                f.name for f in fields if f.crm_type not in ("address", "location") and _selectable(f.name)
            ]
            sampled, counts = await _sample(connector, names, sample_size)
            fields = [f.model_copy(update={"filled": counts.get(f.name)}) for f in fields]
        objects.append(CrmObject(object=obj, crm_name=sobject, fields=fields, sampled=sampled))
    # Field API names are case-insensitive in Salesforce: resolve to the spelling describe reports.
    # (The account object comes first, the task object second.)
    by_lower = {f.name.lower(): f.name for f in objects[0].fields}
    task_by_lower = {f.name.lower(): f.name for f in objects[1].fields}
    options = connector.options
    products, owners = await read_products_and_owners(connector) if catalogue else (None, None)
    return CrmSchema(
        crm="salesforce",
        objects=objects,
        products=products,
        owners=owners,
        mapped={name: by_lower.get(api.lower()) for name, api in options.account_fields},
        product_fields={
            "account": {
                s.name: by_lower.get(options.product_field(s.name).lower(), options.product_field(s.name))
                for s in ACCOUNT_FIELDS
            },
            "task": {
                TASK_KEY_FIELD.name: task_by_lower.get(options.task_key_field.lower(), options.task_key_field)
            },
        },
    )
