"""Which HubSpot properties the connector reads, per object type, and the mapping's options.

Sources (HubSpot developer documentation):

- deals: ``amount`` and ``deal_currency_code`` are the deal's own amount and currency;
  ``amount_in_home_currency`` ("Amount in company currency") is HubSpot's calculated amount in the
  account's company currency, the currency "used in deal totals, reports, and the default currency
  for new deals" (https://developers.hubspot.com/docs/api/settings/currencies and
  https://developers.hubspot.com/docs/api-reference/latest/account/settings/multicurrency/get-company-currency);
- line items: ``hs_line_item_currency_code`` is the line item's currency
  (https://developers.hubspot.com/docs/api/crm/line-items); HubSpot documents no line-item amount in
  the company currency, so the mapping derives one only where the line item is in that currency;
- companies and contacts: ``hs_merged_object_ids`` lists the ids merged into a record
  (https://developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-and-companies);
- bodies: ``hs_note_body``, ``hs_call_body``, ``hs_meeting_body`` and ``hs_email_html`` are rich
  text (HTML), ``hs_email_text`` the e-mail's plain text, ``hs_email_direction`` tells our e-mails
  (``EMAIL``) from the customer's (``INCOMING_EMAIL``)
  (https://developers.hubspot.com/docs/api-reference/latest/crm/activities/emails/guide and the
  notes, calls and meetings guides beside it).
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, TASK_KEY_FIELD

#: semicolon-separated ids of the records merged into this one (companies and contacts)
MERGED_IDS = "hs_merged_object_ids"
#: an e-mail's body: the HTML one first, the plain-text one where there is no HTML
EMAIL_BODY_PROPERTIES: tuple[str, ...] = ("hs_email_html", "hs_email_text")
PRODUCT_EXTRA = ("family", "tier", "hs_product_type", "recurringbillingfrequency", "description")


@dataclass(frozen=True)
class MappingOptions:
    """What a mapping needs from the connection's configuration."""

    prefix: str = "crm_upsell_"
    account_fields: tuple[str, ...] = ()
    #: the account's company currency once known (``HubSpotConnector.home_currency``)
    home_currency: str | None = None

    @property
    def task_key_property(self) -> str:
        return self.prefix + TASK_KEY_FIELD.name


def modified_property(object_type: str) -> str:
    """The property that holds the last-modified stamp (contacts use their own name)."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def properties_for(object_type: str, options: MappingOptions) -> tuple[str, ...]:
    """Only the properties the product uses: long lists of every custom property break URLs (414)."""
    props: tuple[str, ...]
    if object_type == "companies":
        own = tuple(options.prefix + name for name in ACCOUNT_FIELD_NAMES)
        props = (
            "name",
            "domain",
            "industry",
            "lifecyclestage",
            "hubspot_owner_id",
            "createdate",
            MERGED_IDS,
            *options.account_fields,
            *own,
        )
    elif object_type == "contacts":
        from crm_upsell_hubspot.engagement import ENGAGEMENT_PROPERTIES

        props = ("email", "firstname", "lastname", "lifecyclestage", "createdate", MERGED_IDS)
        props += ENGAGEMENT_PROPERTIES
    elif object_type == "deals":
        props = (
            "dealname",
            "dealstage",
            "pipeline",
            "amount",
            "deal_currency_code",
            "amount_in_home_currency",
            "closedate",
            "createdate",
            "hubspot_owner_id",
            "hs_is_closed",
            "hs_is_closed_won",
        )
    elif object_type == "line_items":
        props = (
            "name",
            "hs_product_id",
            "hs_sku",
            "quantity",
            "price",
            "amount",
            "hs_line_item_currency_code",
            "recurringbillingfrequency",
            "hs_recurring_billing_period",
        )
    elif object_type == "products":
        props = ("name", "hs_sku", "price", *PRODUCT_EXTRA)
    elif object_type == "calls":
        props = (
            "hs_timestamp",
            "hs_call_title",
            "hs_call_body",
            "hs_call_direction",
            "hs_call_disposition",
            "hubspot_owner_id",
        )
    elif object_type == "meetings":
        props = (
            "hs_timestamp",
            "hs_meeting_title",
            "hs_meeting_body",
            "hs_meeting_outcome",
            "hubspot_owner_id",
        )
    elif object_type == "emails":
        props = (
            "hs_timestamp",
            "hs_email_subject",
            *EMAIL_BODY_PROPERTIES,
            "hs_email_direction",
            "hubspot_owner_id",
        )
    elif object_type == "notes":
        props = ("hs_timestamp", "hs_note_body", "hubspot_owner_id")
    elif object_type == "tasks":
        props = (
            "hs_timestamp",
            "hs_task_subject",
            "hs_task_status",
            "hs_task_priority",
            "hs_task_type",
            "hubspot_owner_id",
            options.task_key_property,
        )
    else:
        raise ValueError(f"unknown HubSpot object type {object_type!r}")
    return tuple(dict.fromkeys((*props, modified_property(object_type))))
