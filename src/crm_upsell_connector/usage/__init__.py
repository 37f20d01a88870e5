"""Usage from where it lives: product databases, warehouses and CSV/Parquet files as feature sources.

``config`` (the ``[[usage.sources]]`` section), ``readers`` (chunked reads), ``stream`` (the usage
streams of a sync), ``matching`` (source keys to CRM accounts), ``features`` (metrics and trends as
features) and ``preview`` (what ``crm-upsell usage preview`` shows).
"""
