"""A Salesforce REST API emulator serving the shared scenario in Salesforce's shapes, one module per API area.

``auth`` (OAuth token flows, refresh-token rotation), ``query`` (SOQL query/queryAll, locators,
timeouts; the SOQL subset in ``soql_parse``/``soql_eval``), ``replication`` (getDeleted, the Recycle
Bin and its purge), ``sobjects`` (describe and sObject Collections), ``access`` and ``permissions``
(field-level security and the permission-set objects behind it), ``tooling`` (Tooling CustomField),
``currency`` (CurrencyType, DatedConversionRate, Organization), ``merge``, ``limits``;
``base``/``data``/``schema``/``store`` hold the org's state and ``app`` its HTTP wiring. Shapes follow Salesforce's official Postman
collection and REST API guide: 18-character ids with the standard key prefixes, ``attributes`` on
every record, datetimes as ``2026-01-01T00:00:00.000+0000``, error bodies as ``[{"message",
"errorCode"}]``, ``Sforce-Limit-Info`` on every API response, and query cursors
(``nextRecordsUrl``) that hold a position, not a copy.
"""

from __future__ import annotations

from crm_upsell_salesforce.sandbox.app import create_app
from crm_upsell_salesforce.sandbox.common import KEY_PREFIXES, OBJECTS, make_id, sf_datetime
from crm_upsell_salesforce.sandbox.helpers import delete, salesforce_id, sandbox_state, set_fields, touch
from crm_upsell_salesforce.sandbox.keys import SandboxKeypair, sandbox_keypair
from crm_upsell_salesforce.sandbox.org import SalesforceSandbox

__all__ = [
    "KEY_PREFIXES",
    "OBJECTS",
    "SalesforceSandbox",
    "SandboxKeypair",
    "create_app",
    "delete",
    "make_id",
    "salesforce_id",
    "sandbox_keypair",
    "sandbox_state",
    "set_fields",
    "sf_datetime",
    "touch",
]
