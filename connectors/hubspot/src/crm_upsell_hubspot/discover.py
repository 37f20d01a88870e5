"""``describe`` for HubSpot: the properties of companies and tasks, a sample's fill counts, products, owners.

Properties come from the CRM properties API (``GET /crm/v3/properties/{objectType}``: each has
``name``, ``label``, ``type``, ``fieldType``, ``calculated`` and ``modificationMetadata.readOnlyValue``;
https://developers.hubspot.com/docs/api/crm/properties). The sample is read with the objects list
endpoint (``GET /crm/v3/objects/companies``, at most 100 per page, ``properties`` as a comma list;
https://developers.hubspot.com/docs/api/crm/companies).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
from crm_upsell_hubspot.client import results_of

if TYPE_CHECKING:
    from crm_upsell_hubspot.connector import HubSpotConnector

#: HubSpot property ``type`` -> canonical kind (types listed on the properties API page above).
_KINDS: dict[str, FieldKind] = {
    "number": "number",
    "string": "string",
    "phone_number": "string",
    "bool": "bool",
    "booleancheckbox": "bool",
    "enumeration": "enumeration",
    "date": "date",
    "datetime": "datetime",
}
_OBJECTS: dict[ObjectName, str] = {
    "account": "companies",
    "task": "tasks",
    "contact": "contacts",
    "deal": "deals",
}
# The list endpoint's page cap; property names go in the query string, so they are asked for in
# chunks that keep the URL well under the length at which HubSpot answers HTTP 414 (URI too long;
# the documentation gives no figure, so the chunks are kept to a few thousand characters).
_PAGE = 100
_NAMES_CHARS = 3000


def _field(prop: dict[str, Any]) -> CrmField:
    meta = prop.get("modificationMetadata") or {}
    crm_type = str(prop.get("type") or "")
    kind = _KINDS.get(crm_type, "other")
    if crm_type == "string" and prop.get("fieldType") == "textarea":
        kind = "text"
    return CrmField(
        name=str(prop.get("name")),
        label=str(prop.get("label") or ""),
        kind=kind,
        crm_type=crm_type,
        writable=not bool(meta.get("readOnlyValue")) and not bool(prop.get("calculated")),
        custom=not bool(prop.get("hubspotDefined")),
    )


def _chunks(names: Sequence[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    length = 0
    for name in names:
        if chunk and length + len(name) + 1 > _NAMES_CHARS:
            yield chunk
            chunk, length = [], 0
        chunk.append(name)
        length += len(name) + 1
    if chunk:
        yield chunk


async def _sample(connector: HubSpotConnector, names: list[str], size: int) -> tuple[int, dict[str, int]]:
    """Fill counts of ``names`` over the first ``size`` companies (by id, as the list endpoint pages)."""
    merged: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(names):
        after: str | None = None
        seen = 0
        while seen < size:
            params: dict[str, Any] = {"limit": min(_PAGE, size - seen), "properties": ",".join(chunk)}
            if after:
                params["after"] = after
            reply = await connector.client.get(
                "/crm/v3/objects/companies", params, endpoint="GET companies (sample)"
            )
            for raw in results_of(reply):
                merged.setdefault(str(raw.get("id")), {}).update(raw.get("properties") or {})
            seen += len(results_of(reply))
            after = ((reply.get("paging") or {}).get("next") or {}).get("after")
            if not after or not results_of(reply):
                break
    records = list(merged.values())
    return len(records), fill_counts(records, names)


async def describe(connector: HubSpotConnector, *, sample_size: int, catalogue: bool) -> CrmSchema:
    prefix = connector.settings.property_prefix
    objects: list[CrmObject] = []
    for obj, object_type in _OBJECTS.items():
        if obj not in ESSENTIAL_OBJECTS and not catalogue:
            continue
        reply = await connector.client.get(
            f"/crm/v3/properties/{object_type}", endpoint=f"GET properties {object_type}"
        )
        fields = [_field(p) for p in results_of(reply) if not p.get("archived")]
        sampled = 0
        if obj == "account" and sample_size > 0 and fields:
            sampled, counts = await _sample(connector, [f.name for f in fields], sample_size)
            fields = [f.model_copy(update={"filled": counts.get(f.name, 0)}) for f in fields]
        objects.append(CrmObject(object=obj, crm_name=object_type, fields=fields, sampled=sampled))
    names = {f.name for f in objects[0].fields}  # the account object comes first
    products, owners = await read_products_and_owners(connector) if catalogue else (None, None)
    return CrmSchema(
        crm="hubspot",
        objects=objects,
        products=products,
        owners=owners,
        # The connector reads a configured field under exactly the name written in the config.
        mapped={n: (n if n in names else None) for n in connector.context.account_fields},
        product_fields={
            "account": {s.name: prefix + s.name for s in ACCOUNT_FIELDS},
            "task": {TASK_KEY_FIELD.name: connector.options.task_key_property},
        },
    )
