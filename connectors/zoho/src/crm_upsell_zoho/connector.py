"""The Zoho CRM connector: reads every stream, sets up the product's fields, writes fields and tasks.

**How it reads.** The records API (``GET /crm/v8/{module}``, 200 records a call, ``fields`` limited to
what the product uses), sorted by ``Modified_Time`` ascending, with ``If-Modified-Since``. It is not
paged by offset: every call starts again at the modification second of the last record read (keyset
paging), and records already read in that second are dropped by id, so a record edited mid-read
(which jumps to the end of the order) can never push another one out of view, and no read depends on
a page token that expires. Only when more than a page of records shares one second does a read page
inside that second, by ``page`` and, past 2,000 records, by ``page_token``. A nothing-changed read is
one call (Zoho answers 204). Users come from ``GET /users?type=AllUsers``; deletions from
``GET /{module}/deleted?type=all`` with ``If-Modified-Since``.

**Why not COQL.** A COQL call returns up to 2,000 rows for 3 credits (records API: 200 rows for 1
credit), so COQL would spend about a third of the credits on a first full sync. It is not used for
reads because it returns lookups without names, does not join related lists, and pages by offset
(shifted by edits made mid-read). COQL serves ``find_tasks``, where one call looks up 50 task keys.

**Line items** (what an account owns) come from each won or open deal's Products related list (see
:mod:`crm_upsell_zoho.owned`), or from a custom subform when ``owned_products`` names one; the
``sales_order_items`` / ``invoice_items`` streams read the product lines of Sales Orders / Invoices
(``Ordered_Items`` / ``Invoiced_Items``) inside their record pages when ``owned_products`` names
``sales_orders`` / ``invoices`` (see :mod:`crm_upsell_zoho.line_items`). The
``deals`` and ``line_items`` streams ask for the same Deals fields, so when both are read from the
same position (a full sync reads them side by side) one response serves both (:class:`SharedPages`).
**Notes** are read newest first without ``If-Modified-Since`` (see :mod:`crm_upsell_zoho.notes`).
**Writes** always send ``trigger`` (``[]`` unless configured): no workflow, approval or blueprint runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from crm_upsell_connector.connector import PluginBase
from crm_upsell_zoho.base import STREAMS, ZohoBase
from crm_upsell_zoho.checks import ZohoChecks
from crm_upsell_zoho.reads import ZohoReads, if_modified_since, ims_moment
from crm_upsell_zoho.settings import ZohoSettings
from crm_upsell_zoho.shared import SharedPages
from crm_upsell_zoho.writes import NOT_RETRIABLE, ZohoWrites

if TYPE_CHECKING:
    from crm_upsell_connector.sandbox.server import SandboxOptions

__all__ = [
    "NOT_RETRIABLE",
    "SANDBOX_REFRESH_ENV",
    "SANDBOX_SECRET_ENV",
    "STREAMS",
    "SharedPages",
    "ZohoBase",
    "ZohoConnector",
    "ZohoPlugin",
    "if_modified_since",
    "ims_moment",
]

SANDBOX_SECRET_ENV = "CRM_UPSELL_SANDBOX_ZOHO_CLIENT_SECRET"  # noqa: S105 - a variable name
SANDBOX_REFRESH_ENV = "CRM_UPSELL_SANDBOX_ZOHO_REFRESH_TOKEN"


class ZohoConnector(ZohoReads, ZohoWrites, ZohoChecks):
    """One Zoho CRM organisation, through OAuth (refresh token): reads (:mod:`crm_upsell_zoho.reads`),
    writes (:mod:`crm_upsell_zoho.writes`), set-up and checks (:mod:`crm_upsell_zoho.checks`) over the
    shared state of :class:`~crm_upsell_zoho.base.ZohoBase`."""


class ZohoPlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "zoho"
    title = "Zoho CRM"
    settings_model: type[BaseModel] = ZohoSettings
    connector_class = ZohoConnector
    sandbox_module = "crm_upsell_zoho.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        return {
            "data_centre": "com",
            "accounts_url": base_url,
            "client_id": options.client_id,
            "client_secret": f"env:{SANDBOX_SECRET_ENV}",
            "refresh_token": f"env:{SANDBOX_REFRESH_ENV}",
            "rate_limit_max": options.rate_limit_max,
            "rate_limit_interval_s": options.rate_limit_interval_ms / 1000.0,
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_SECRET_ENV: options.client_secret, SANDBOX_REFRESH_ENV: options.refresh_token}
