"""Which sObject and which fields each stream reads, the names of the product's custom fields, and
the connection's mapping options (what mapping and writing need from the configuration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, TASK_KEY_FIELD
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.marketing import CAMPAIGN_MEMBER_FIELDS, OPT_OUT

#: connector stream -> the sObject it reads.
SOBJECTS: dict[str, str] = {
    "users": "User",
    "products": "Product2",
    "accounts": "Account",
    "contacts": "Contact",
    "opportunities": "Opportunity",
    "line_items": "OpportunityLineItem",
    "assets": "Asset",
    "tasks": "Task",
    "events": "Event",
    "campaign_members": "CampaignMember",
}
MODSTAMP = "SystemModstamp"
# Standard Account fields a configuration may map in under their own names (anything else is custom).
STANDARD_ACCOUNT_FIELDS = frozenset(
    f.lower()
    for f in (
        "AccountNumber",
        "AccountSource",
        "AnnualRevenue",
        "BillingCity",
        "BillingCountry",
        "BillingPostalCode",
        "BillingState",
        "CreatedDate",
        "Description",
        "Industry",
        "LastActivityDate",
        "Name",
        "NumberOfEmployees",
        "Ownership",
        "ParentId",
        "Phone",
        "Rating",
        "ShippingCity",
        "ShippingCountry",
        "ShippingState",
        "Sic",
        "Site",
        "TickerSymbol",
        "Type",
        "Website",
        "YearStarted",
    )
)
ACCOUNT_PREFIX = "001"
CONTACT_PREFIX = "003"
PRIORITIES = {"high": "High", "medium": "Normal", "low": "Low"}
OPEN_TASK_STATUS = "Not Started"


def custom_field(prefix: str, canonical: str) -> str:
    """``Crm_Upsell_Loyalty_Score__c`` for ``loyalty_score``."""
    return prefix + "_".join(part.capitalize() for part in canonical.split("_")) + "__c"


def account_field_api_name(configured: str) -> str:
    """The Account field behind a configured name: itself when standard or already custom
    (``Seats__c``, ``ns__Seats__c``), else ``<name>__c`` (``seats_purchased`` -> ``seats_purchased__c``)."""
    soql.name(configured)
    if "__" in configured or configured.lower() in STANDARD_ACCOUNT_FIELDS:
        return configured
    return configured + "__c"


@dataclass(frozen=True)
class MappingOptions:
    """What a mapping needs from the connection's configuration."""

    prefix: str = "Crm_Upsell_"
    #: configured account field name -> Salesforce field API name
    account_fields: tuple[tuple[str, str], ...] = ()
    product_extra_fields: tuple[str, ...] = ()
    #: a Task field saying Inbound/Outbound for non-call activities (calls use CallType)
    direction_field: str | None = None
    #: an Event field holding the meeting's outcome (Completed, No Show...)
    outcome_field: str | None = None

    @classmethod
    def build(
        cls,
        prefix: str,
        account_fields: Iterable[str],
        product_extra_fields: Iterable[str] = (),
        *,
        direction_field: str | None = None,
        outcome_field: str | None = None,
    ) -> MappingOptions:
        pairs = tuple((n, account_field_api_name(n)) for n in dict.fromkeys(account_fields))
        for extra in (*product_extra_fields, direction_field, outcome_field):
            if extra is not None:
                soql.name(extra)
        return cls(prefix, pairs, tuple(product_extra_fields), direction_field, outcome_field)

    @property
    def task_key_field(self) -> str:
        return custom_field(self.prefix, TASK_KEY_FIELD.name)

    def product_field(self, canonical: str) -> str:
        return custom_field(self.prefix, canonical)


def fields_for(stream: str, options: MappingOptions) -> tuple[str, ...]:
    """Only the fields the product uses (SOQL has no ``SELECT *``, and fewer fields read faster)."""
    own = tuple(options.product_field(n) for n in ACCOUNT_FIELD_NAMES)
    fields: tuple[str, ...] = {
        "users": ("Name", "Email", "IsActive"),
        "products": ("Name", "ProductCode", "Family", "IsActive", *options.product_extra_fields),
        "accounts": (
            "Name",
            "Website",
            "Industry",
            "Type",
            "OwnerId",
            "CreatedDate",
            *(api for _, api in options.account_fields),
            *own,
        ),
        "contacts": ("AccountId", "Email", "FirstName", "LastName", "CreatedDate", OPT_OUT),
        "campaign_members": CAMPAIGN_MEMBER_FIELDS,
        "opportunities": (
            "AccountId",
            "OwnerId",
            "Name",
            "StageName",
            "IsClosed",
            "IsWon",
            "Amount",
            "CloseDate",
            "CreatedDate",
        ),
        "line_items": (
            "OpportunityId",
            "Product2Id",
            "ProductCode",
            "Name",
            "Quantity",
            "UnitPrice",
            "TotalPrice",
        ),
        "assets": ("AccountId", "Product2Id", "Name", "Quantity", "Price"),
        "tasks": (
            "AccountId",
            "WhatId",
            "WhoId",
            "OwnerId",
            "Subject",
            "ActivityDate",
            "Status",
            "Priority",
            "TaskSubtype",
            "Type",
            "CallType",
            "CallDisposition",
            "IsClosed",
            "CreatedDate",
            options.task_key_field,
            *((options.direction_field,) if options.direction_field else ()),
        ),
        "events": (
            "AccountId",
            "WhatId",
            "WhoId",
            "OwnerId",
            "Subject",
            "StartDateTime",
            "ActivityDateTime",
            *((options.outcome_field,) if options.outcome_field else ()),
        ),
    }[stream]
    return tuple(dict.fromkeys(("Id", *fields, MODSTAMP)))
