"""The org's schema: field definitions as describe reports them and the sObjects they make up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crm_upsell_salesforce.sandbox.common import (
    Fail,
    label_of,
)

# ---- schema --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field as ``describe`` reports it, plus what writes may do with it."""

    name: str
    type: str
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # on create
    length: int = 0
    precision: int = 0
    scale: int = 0
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False
    label: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or label_of(self.name),
            "type": self.type,
            "custom": self.custom,
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 0,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "calculated": False,
            "defaultedOnCreate": not self.nillable and not self.required,
            "filterable": self.type != "textarea" or self.length <= 255,
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "percent", "datetime"),
            "idLookup": self.name == "Id",
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
            "picklistValues": [],
        }


def _f(name: str, ftype: str, access: str = "cu", **kw: Any) -> FieldDef:
    lengths = {"string": 255, "textarea": 32_000, "picklist": 255, "email": 80, "url": 255, "phone": 40}
    kw.setdefault("length", 18 if ftype in ("id", "reference") else lengths.get(ftype, 0))
    if ftype in ("boolean",):
        kw.setdefault("nillable", False)
    return FieldDef(
        name,
        ftype,
        createable="c" in access,
        updateable="u" in access,
        custom=name.endswith("__c"),
        **kw,
    )


def _ref(name: str, target: str, relationship: str | None, access: str = "cu", **kw: Any) -> FieldDef:
    return _f(name, "reference", access, reference_to=(target,), relationship=relationship, **kw)


def system_fields(with_deleted: bool = True) -> list[FieldDef]:
    out = [_f("Id", "id", "", nillable=False)]
    if with_deleted:
        out.append(_f("IsDeleted", "boolean", ""))
    out += [
        _f("CreatedDate", "datetime", "", nillable=False),
        _ref("CreatedById", "User", "CreatedBy", "", nillable=False),
        _f("LastModifiedDate", "datetime", "", nillable=False),
        _ref("LastModifiedById", "User", "LastModifiedBy", "", nillable=False),
        _f("SystemModstamp", "datetime", "", nillable=False),
    ]
    return out


def _owner() -> FieldDef:
    return _ref("OwnerId", "User", "Owner", nillable=False)


def _num(
    name: str, ftype: str = "double", precision: int = 18, scale: int = 0, access: str = "cu"
) -> FieldDef:
    return _f(name, ftype, access, precision=precision, scale=scale)


def _activity_common() -> list[FieldDef]:
    return [
        _f("WhatId", "reference", reference_to=("Account", "Opportunity", "Asset"), relationship=None),
        _f("WhoId", "reference", reference_to=("Contact",), relationship=None),
        _ref("AccountId", "Account", "Account", ""),
        _owner(),
        _f("Subject", "combobox"),
        _f("Description", "textarea"),
        _f("ActivityDate", "date"),
    ]


def standard_schema() -> dict[str, list[FieldDef]]:
    return {
        "Account": [
            _f("Name", "string", required=True, nillable=False),
            # Set on the records a merge deleted (SOAP API Developer Guide, "merge()").
            _ref("MasterRecordId", "Account", "MasterRecord", ""),
            _f("Website", "url"),
            _f("Industry", "picklist", length=255),
            _f("Type", "picklist", length=255),
            _f("Description", "textarea"),
            # Multi-currency orgs: every currency-bearing record has CurrencyIsoCode (Salesforce Help,
            # "Considerations for Enabling Multiple Currencies"); an account's is the one it trades in.
            _f("CurrencyIsoCode", "picklist", length=3),
            _owner(),
            _num("seats_purchased__c"),
            _num("seats_active__c"),
            _num("nps_score__c", precision=2),
            _f("onboarding_stage__c", "picklist"),
            _f("do_not_contact__c", "boolean"),
        ],
        "Contact": [
            _ref("AccountId", "Account", "Account"),
            _ref("MasterRecordId", "Contact", "MasterRecord", ""),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, required=True, nillable=False),
            _f("Name", "string", "", length=121, nillable=False),
            _f("Email", "email"),
            _f("Title", "string", length=128),
            _f("HasOptedOutOfEmail", "boolean"),
            _owner(),
        ],
        "Opportunity": [
            _ref("AccountId", "Account", "Account"),
            _owner(),
            _f("Name", "string", length=120, required=True, nillable=False),
            _f("StageName", "picklist", required=True, nillable=False),
            _f("IsClosed", "boolean", ""),
            _f("IsWon", "boolean", ""),
            _num("Amount", "currency", 18, 2),
            _f("CloseDate", "date", required=True, nillable=False),
            _num("Probability", "percent", 3, 0),
            _f("CurrencyIsoCode", "picklist", length=3),
            _f("Pricebook2Id", "reference", reference_to=("Pricebook2",), relationship=None),
            _f("HasOpportunityLineItem", "boolean", ""),
        ],
        "OpportunityLineItem": [
            _ref("OpportunityId", "Opportunity", "Opportunity", "c", required=True, nillable=False),
            _ref("PricebookEntryId", "PricebookEntry", "PricebookEntry", "c", required=True),
            _ref("Product2Id", "Product2", "Product2", ""),
            _f("ProductCode", "string", ""),
            _f("Name", "string", "", length=376),
            _num("Quantity", "double", 12, 2),
            _num("UnitPrice", "currency", 18, 2),
            _num("ListPrice", "currency", 18, 2, access=""),
            _num("TotalPrice", "currency", 18, 2, access=""),
            _f("ServiceDate", "date"),
            _f("Description", "string"),
            _f("Billing_Period__c", "picklist"),
            _f("CurrencyIsoCode", "picklist", "", length=3),
        ],
        "Product2": [
            _f("Name", "string", required=True, nillable=False),
            _f("ProductCode", "string"),
            _f("Family", "picklist"),
            _f("IsActive", "boolean"),
            _f("Description", "textarea", length=4000),
            _num("Tier__c", precision=2),
        ],
        "PricebookEntry": [
            _f("Name", "string", "", nillable=False),
            _f(
                "Pricebook2Id",
                "reference",
                "c",
                reference_to=("Pricebook2",),
                relationship=None,
                required=True,
                nillable=False,
            ),
            _ref("Product2Id", "Product2", "Product2", "c", required=True, nillable=False),
            _f("ProductCode", "string", ""),
            _num("UnitPrice", "currency", 18, 2),
            _f("CurrencyIsoCode", "picklist", length=3),
            _f("IsActive", "boolean"),
            _f("UseStandardPrice", "boolean"),
        ],
        "Asset": [
            _ref("AccountId", "Account", "Account"),
            _ref("Product2Id", "Product2", "Product2"),
            _owner(),
            _f("Name", "string", required=True, nillable=False),
            _num("Quantity", "double", 18, 2),
            _num("Price", "currency", 18, 2),
            _f("CurrencyIsoCode", "picklist", length=3),
            _f("Status", "picklist"),
            _f("PurchaseDate", "date"),
            _f("InstallDate", "date"),
            _f("UsageEndDate", "date"),
        ],
        "Task": [
            *_activity_common(),
            _f("IsArchived", "boolean", ""),
            _f("Status", "picklist", nillable=False),
            _f("Priority", "picklist", nillable=False),
            _f("IsClosed", "boolean", ""),
            _f("TaskSubtype", "picklist", "c"),
            _f("Type", "picklist", length=40),
            _f("CallType", "picklist", length=40),
            _f("CallDisposition", "string"),
            _f("CallDurationInSeconds", "int", precision=9),
            _f("CompletedDateTime", "datetime", ""),
            _f("Direction__c", "picklist"),
        ],
        "Event": [
            *_activity_common(),
            _f("IsArchived", "boolean", ""),
            _f("StartDateTime", "datetime"),
            _f("EndDateTime", "datetime"),
            _f("ActivityDateTime", "datetime"),
            _f("DurationInMinutes", "int", precision=8),
            _f("IsAllDayEvent", "boolean"),
            _f("EventSubtype", "picklist", "c"),
            _f("Type", "picklist", length=40),
            _f("ShowAs", "picklist", length=40),
            _f("Outcome__c", "picklist"),
        ],
        "User": [
            _f("Username", "string", length=80, required=True, nillable=False),
            _f("Name", "string", "", length=121, nillable=False),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, required=True, nillable=False),
            _f("Email", "email", required=True, nillable=False),
            _f("IsActive", "boolean"),
            _f("UserType", "picklist", ""),
        ],
        "PermissionSet": [
            _f("Name", "string", required=True, nillable=False, length=80),
            _f("Label", "string", required=True, nillable=False, length=80),
            _f("Description", "textarea", length=255),
            _f("IsOwnedByProfile", "boolean", ""),
        ],
        "FieldPermissions": [
            _ref("ParentId", "PermissionSet", "Parent", "c", required=True, nillable=False),
            _f("SobjectType", "picklist", "c", required=True, nillable=False, length=40),
            _f("Field", "picklist", "c", required=True, nillable=False, length=80),
            _f("PermissionsRead", "boolean"),
            _f("PermissionsEdit", "boolean"),
        ],
        "CurrencyType": [
            _f("IsoCode", "picklist", "c", length=3, required=True, nillable=False),
            _num("ConversionRate", "double", 18, 6),
            _f("DecimalPlaces", "int", precision=2),
            _f("IsActive", "boolean"),
            _f("IsCorporate", "boolean", ""),
        ],
        "DatedConversionRate": [
            _f("IsoCode", "picklist", "c", length=3, required=True, nillable=False),
            _num("ConversionRate", "double", 18, 6),
            _f("StartDate", "date", required=True, nillable=False),
            _f("NextStartDate", "date", ""),
        ],
        "Organization": [
            _f("Name", "string", "", length=80),
            _f("DefaultCurrencyIsoCode", "picklist", "", length=3),
            _f("IsSandbox", "boolean", ""),
        ],
        "PermissionSetAssignment": [
            _ref("AssigneeId", "User", "Assignee", "c", required=True, nillable=False),
            _ref("PermissionSetId", "PermissionSet", "PermissionSet", "c", required=True, nillable=False),
        ],
    }


TOOLING_FIELDS: list[FieldDef] = [
    _f("Id", "id", "", nillable=False),
    _f("DeveloperName", "string", "", length=40),
    _f("TableEnumOrId", "string", "", length=40),
    _f("NamespacePrefix", "string", "", length=15),
    _f("Description", "textarea", ""),
    _f("CreatedDate", "datetime", "", nillable=False),
    _f("LastModifiedDate", "datetime", "", nillable=False),
]

# Metadata type -> (describe type, (length, precision, scale) defaults)
_METADATA_TYPES = {
    "Number": "double",
    "Percent": "percent",
    "Currency": "currency",
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "DateTime": "datetime",
    "Date": "date",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "Url": "url",
    "Email": "email",
}


class SObject:
    """One sObject type: its name, key prefix, fields (by lower-case name) and parent relationships."""

    def __init__(self, name: str, prefix: str, fields: Iterable[FieldDef], label: str | None = None) -> None:
        self.name = name
        self.prefix = prefix
        self.label = label or label_of(name)
        self.fields: dict[str, FieldDef] = {}
        self.relationships: dict[str, tuple[str, str, str]] = {}  # lower rel -> (rel, fk, target)
        for fdef in fields:
            self.add(fdef)

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name.lower()] = fdef
        if fdef.relationship and len(fdef.reference_to) == 1:
            self.relationships[fdef.relationship.lower()] = (
                fdef.relationship,
                fdef.name,
                fdef.reference_to[0],
            )

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())


def field_from_metadata(name: str, metadata: dict[str, Any]) -> FieldDef:
    label = metadata.get("label")
    if not isinstance(label, str) or not label.strip():
        raise Fail(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [label]")
    if len(label) > 40:
        raise Fail(400, "FIELD_INTEGRITY_EXCEPTION", "Field Label: data value too large (max length=40)")
    mtype = metadata.get("type")
    ftype = _METADATA_TYPES.get(str(mtype))
    if ftype is None:
        raise Fail(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"Field type {mtype!r} is not supported; use one of {', '.join(_METADATA_TYPES)}",
        )

    def number(key: str, low: int, high: int) -> int:
        raw = metadata.get(key)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
            raise Fail(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{key.title()}: You must enter a value between {low} and {high}",
            )
        return int(raw)

    length = precision = scale = 0
    if mtype == "Text":
        length = number("length", 1, 255)
    elif mtype == "LongTextArea":
        length = number("length", 256, 131_072)
        number("visibleLines", 2, 50)
    elif mtype == "TextArea":
        length = 255
    elif ftype in ("double", "percent", "currency"):
        precision = number("precision", 1, 18)
        scale = number("scale", 0, precision) if "scale" in metadata else 0
    elif mtype in ("Url",):
        length = 255
    elif mtype == "Email":
        length = 80
    elif mtype == "Picklist":
        length = 255
    return FieldDef(
        name,
        ftype,
        length=length,
        precision=precision,
        scale=scale,
        custom=True,
        label=label,
        nillable=ftype != "boolean",
    )
