"""Zoho CRM connector for crm-upsell-connector."""
