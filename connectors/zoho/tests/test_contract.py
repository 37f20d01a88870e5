"""The core's connector contract, run against the Zoho CRM sandbox."""

from __future__ import annotations

from crm_upsell_connector.testing import ConnectorContractTests


class TestZohoContract(ConnectorContractTests):
    plugin_name = "zoho"
