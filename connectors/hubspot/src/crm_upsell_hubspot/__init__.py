"""HubSpot connector for crm-upsell-connector."""
