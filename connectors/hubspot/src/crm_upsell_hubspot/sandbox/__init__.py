"""A HubSpot API emulator (CRM v3 objects, search, v4 associations, properties, owners, OAuth) over a scenario.

Request and response shapes follow HubSpot's public OpenAPI descriptions: numeric string ids, string
property values, ISO-8601 timestamps with milliseconds, the ``X-HubSpot-RateLimit-*`` headers, the error
bodies, 207 multi-status batches and the 10,000-result search cap. The store is in memory and indexed so
a search page sorted by ``hs_lastmodifieddate`` costs O(log n + page).

One module per API area: ``objects`` (CRM v3 objects and batches), ``search``, ``associations`` (v4),
``properties``, ``owners``, ``auth`` (tokens), ``merge`` (company/contact merges); ``state`` and
``records`` hold the portal's data, ``wiring`` the per-request plumbing (auth, faults, limits) and
``app`` the routes. Shared server plumbing (clock, limiter, faults, stats) is the core's
``crm_upsell_connector.sandbox.server``.
"""

from __future__ import annotations

from crm_upsell_hubspot.sandbox.app import (
    archive,
    create_app,
    hubspot_id,
    merge,
    sandbox_state,
    set_properties,
    touch,
)
from crm_upsell_hubspot.sandbox.catalog import ASSOCIATION_TYPES, OBJECT_TYPES
from crm_upsell_hubspot.sandbox.portal import HubSpotSandbox

__all__ = [
    "ASSOCIATION_TYPES",
    "OBJECT_TYPES",
    "HubSpotSandbox",
    "archive",
    "create_app",
    "hubspot_id",
    "merge",
    "sandbox_state",
    "set_properties",
    "touch",
]
