"""The core's connector contract, run against the Salesforce sandbox."""

from __future__ import annotations

from crm_upsell_connector.testing import ConnectorContractTests


class TestSalesforceContract(ConnectorContractTests):
    plugin_name = "salesforce"
