"""What a CRM holds that the product can use: objects and their fields, products, owners.

Each connector fills a :class:`CrmSchema` from its CRM's metadata API (``Connector.describe``);
``crm-upsell discover`` prints it, ``check`` validates the config against it (``validate.py``) and
``init`` proposes a mapping from it. The shapes are the same for every CRM: field types are brought
to a few canonical kinds, the CRM's own type is kept beside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_upsell_connector.models import Owner, Product, Stream

if TYPE_CHECKING:
    from crm_upsell_connector.connector import Connector

#: The canonical kinds of a CRM field's type (``crm_type`` keeps the CRM's own name for it).
FieldKind = Literal[
    "number", "string", "text", "bool", "date", "datetime", "enumeration", "reference", "other"
]
#: The canonical objects a connector describes (contacts and deals only in a full discovery).
ObjectName = Literal["account", "task", "contact", "deal"]
#: What the pre-write check needs; a full discovery adds the rest.
ESSENTIAL_OBJECTS: tuple[ObjectName, ...] = ("account", "task")


class CrmField(BaseModel):
    """One field of a CRM object as its metadata API reports it."""

    model_config = ConfigDict(frozen=True)

    #: the API name (HubSpot property name, Salesforce field API name, Zoho api_name).
    name: str
    label: str = ""
    kind: FieldKind = "other"
    #: the CRM's own type name (HubSpot ``type``, Salesforce describe ``type``, Zoho ``data_type``).
    crm_type: str = ""
    #: whether an integration may write it (not read-only, not calculated).
    writable: bool = True
    custom: bool = False
    #: records of the sample that hold a value in this field (None: not sampled).
    filled: int | None = None


class CrmObject(BaseModel):
    """One CRM object (HubSpot object type, Salesforce sObject, Zoho module) and its fields."""

    model_config = ConfigDict(frozen=True)

    object: ObjectName
    #: the CRM's name for it: ``companies``, ``Account``, ``Accounts``...
    crm_name: str
    fields: list[CrmField] = Field(default_factory=list)
    #: how many records the fill counts were taken from (0: no sample was read).
    sampled: int = 0

    def field(self, name: str) -> CrmField | None:
        return next((f for f in self.fields if f.name == name), None)


class CrmProduct(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    sku: str | None = None
    name: str = ""
    active: bool = True
    unit_price: float | None = None
    family: str | None = None


class CrmOwner(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    email: str | None = None
    active: bool = True


class CrmSchema(BaseModel):
    """What ``Connector.describe`` returns.

    ``mapped`` resolves each configured account field name (``[features.fields] X.field``) the way
    the connector reads it (HubSpot: the property name as written; Salesforce: the field API name it
    derives; Zoho: the api_name matched without regard to case) to the CRM field it reads, or None
    when the CRM has no such field. ``product_fields`` names, per object, the CRM field each of the
    product's own fields (``fields.ALL_FIELDS``, by canonical name) lives in, or None when it is
    missing (``setup`` creates it).
    """

    model_config = ConfigDict(frozen=True)

    crm: str
    objects: list[CrmObject] = Field(default_factory=list)
    products: list[CrmProduct] | None = None
    owners: list[CrmOwner] | None = None
    mapped: dict[str, str | None] = Field(default_factory=dict)
    product_fields: dict[ObjectName, dict[str, str | None]] = Field(default_factory=dict)

    def object(self, name: ObjectName) -> CrmObject | None:
        return next((o for o in self.objects if o.object == name), None)

    def missing_product_fields(self) -> list[str]:
        """``object.field`` (canonical names) of the product's fields the CRM lacks or will not let us write."""
        missing: list[str] = []
        for obj_name, names in self.product_fields.items():
            obj = self.object(obj_name)
            for canonical, crm_name in names.items():
                found = obj.field(crm_name) if obj is not None and crm_name else None
                if found is None or not found.writable:
                    missing.append(f"{obj_name}.{canonical}")
        return missing

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def fill_counts(records: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
    """How many of ``records`` (flat name -> value mappings) hold a value in each of ``names``.

    Empty strings, empty lists and None count as empty; ``False`` and ``0`` are values.
    """
    counts = dict.fromkeys(names, 0)
    for record in records:
        for name in names:
            value = record.get(name)
            if value is None or value == "" or value == []:
                continue
            counts[name] += 1
    return counts


async def read_products_and_owners(connector: Connector) -> tuple[list[CrmProduct], list[CrmOwner]]:
    """Every product and owner, read through the connector's own product and owner streams."""
    products: list[CrmProduct] = []
    owners: list[CrmOwner] = []
    for stream, canonical in connector.streams.items():
        if canonical not in (Stream.PRODUCTS, Stream.OWNERS):
            continue
        async for page in connector.read(stream, None):
            for record in page.records:
                if isinstance(record, Product):
                    family = record.extra.get("family")
                    products.append(
                        CrmProduct(
                            id=record.id,
                            sku=record.sku,
                            name=record.name,
                            active=record.extra.get("active", True) not in (False, "false", "False"),
                            unit_price=record.unit_price,
                            family=str(family) if family is not None else None,
                        )
                    )
                elif isinstance(record, Owner):
                    owners.append(
                        CrmOwner(id=record.id, name=record.name, email=record.email, active=record.active)
                    )
    return products, owners
