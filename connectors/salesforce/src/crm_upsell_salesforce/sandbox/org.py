"""One emulated org: every API area over the shared state."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict

from crm_upsell_connector.sandbox.scenario import (
    Scenario,
)
from crm_upsell_connector.sandbox.server import (
    SandboxOptions,
    SandboxRuntime,
)
from crm_upsell_salesforce.sandbox.access import FieldAccess
from crm_upsell_salesforce.sandbox.auth import AuthApi
from crm_upsell_salesforce.sandbox.common import (
    KEY_PREFIXES,
    OBJECTS,
    ORG_PREFIX,
    PRICEBOOK_PREFIX,
    TOOLING_PREFIX,
    make_id,
)
from crm_upsell_salesforce.sandbox.currency import CurrencyData
from crm_upsell_salesforce.sandbox.data import ScenarioData
from crm_upsell_salesforce.sandbox.limits import LimitsApi
from crm_upsell_salesforce.sandbox.marketing import MarketingData, marketing_schema
from crm_upsell_salesforce.sandbox.merge import MergeApi
from crm_upsell_salesforce.sandbox.permissions import PermissionsApi
from crm_upsell_salesforce.sandbox.query import QueryApi
from crm_upsell_salesforce.sandbox.replication import ReplicationApi
from crm_upsell_salesforce.sandbox.schema import (
    TOOLING_FIELDS,
    SObject,
    standard_schema,
    system_fields,
)
from crm_upsell_salesforce.sandbox.sobjects import SObjectsApi
from crm_upsell_salesforce.sandbox.store import (
    Computed,
    Cursor,
    Getter,
    Table,
)
from crm_upsell_salesforce.sandbox.tooling import ToolingApi


class SalesforceSandbox(
    AuthApi,
    QueryApi,
    ReplicationApi,
    SObjectsApi,
    ToolingApi,
    LimitsApi,
    PermissionsApi,
    MergeApi,
    CurrencyData,
    MarketingData,
    ScenarioData,
):
    """The state of one emulated Salesforce org and the logic behind every route."""

    def __init__(self, scenario: Scenario, options: SandboxOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.runtime = SandboxRuntime(options, not_before=scenario.now)
        self.lock = threading.RLock()
        self.schema: dict[str, SObject] = {
            name: SObject(name, KEY_PREFIXES[name], [*system_fields(name != "User"), *fields])
            for name, fields in (standard_schema() | marketing_schema()).items()
        }
        self.tooling_schema: dict[str, SObject] = {
            "CustomField": SObject("CustomField", TOOLING_PREFIX["CustomField"], TOOLING_FIELDS)
        }
        self.tables: dict[str, Table] = {name: Table(name) for name in OBJECTS}
        self.tooling_tables: dict[str, Table] = {"CustomField": Table("CustomField")}
        self.ids: dict[str, str] = {}  # scenario key -> Salesforce id
        self.tokens: dict[str, int] = {}
        self.refresh_tokens = {options.refresh_token}
        self.query_timeout_rows = None
        self.locator_batches = None
        self.earliest_deleted_ms = {}
        self.rotate_refresh_tokens = False  # access token -> expiry (sandbox ms)
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.jwt_public_key: str | None = None  # None: the key of sandbox_keypair()
        self.org_id = make_id(ORG_PREFIX, 1)
        self.pricebook_id = make_id(PRICEBOOK_PREFIX, 1)
        self._locators = 0
        self._companies = {c.key: c for c in scenario.companies}
        self._products = {p.key: p for p in scenario.products}
        self._deals = {d.key: d for d in scenario.deals}
        self._getters: dict[str, dict[str, Getter]] = {}
        self._computed: dict[str, dict[str, Computed]] = {}
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load(scenario)
        finally:
            if gc_was_enabled:
                gc.enable()
        self.admin_user = self.tables["User"].ids[0] if self.tables["User"].ids else make_id("005", 1)
        self.access = FieldAccess(self.tables, self.value, lambda: self.admin_user)
        self._init_getters()
        self._init_custom_field_rows()
        self._archive_old_activities()
        self._load_currencies()
        self._load_marketing()

    # -- loading
