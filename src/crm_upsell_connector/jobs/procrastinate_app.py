"""The app procrastinate's own admin CLI loads, on the store of the crm-upsell config.

    procrastinate --app=crm_upsell_connector.jobs.procrastinate_app.app healthchecks
    procrastinate --app=crm_upsell_connector.jobs.procrastinate_app.app shell   # list_jobs, retry, cancel

The config is the one ``crm-upsell`` would read (``$CRM_UPSELL_CONFIG``, else the user config
directory). Use it for inspecting and repairing the queue; workers are started with
``crm-upsell schedule`` and runs are queued with ``crm-upsell run --queue``.
"""

from __future__ import annotations

from crm_upsell_connector.config import load_config
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.jobs.admin import uses_queue
from crm_upsell_connector.jobs.app import make_app

_config = load_config()
if not uses_queue(_config):
    raise ConfigError(
        f"{_config.source}: the store is SQLite, which has no job queue",
        hint="procrastinate's commands apply to PostgreSQL stores only",
    )
app = make_app(_config.store.url, pool_size=2)
