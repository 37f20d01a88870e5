"""The core's connector contract, run against the HubSpot sandbox."""

from __future__ import annotations

from crm_upsell_connector.testing import ConnectorContractTests


class TestHubSpotContract(ConnectorContractTests):
    plugin_name = "hubspot"
