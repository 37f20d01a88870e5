"""Salesforce connector for crm-upsell-connector."""
