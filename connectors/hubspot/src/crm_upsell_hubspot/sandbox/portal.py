"""The whole emulated portal: one class made of the API areas."""

from __future__ import annotations

from crm_upsell_hubspot.sandbox.account import AccountMixin
from crm_upsell_hubspot.sandbox.associations import AssociationsMixin
from crm_upsell_hubspot.sandbox.auth import AuthMixin
from crm_upsell_hubspot.sandbox.merge import MergeMixin
from crm_upsell_hubspot.sandbox.objects import ObjectsMixin
from crm_upsell_hubspot.sandbox.owners import OwnersMixin
from crm_upsell_hubspot.sandbox.properties import PropertiesMixin
from crm_upsell_hubspot.sandbox.search import SearchMixin


class HubSpotSandbox(
    ObjectsMixin,
    SearchMixin,
    MergeMixin,
    AssociationsMixin,
    PropertiesMixin,
    OwnersMixin,
    AccountMixin,
    AuthMixin,
):
    """The state of one emulated HubSpot portal and the logic behind every route."""
