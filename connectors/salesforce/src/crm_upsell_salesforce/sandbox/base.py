"""What every API area of the sandbox reads: the org's state and how a record's values are rendered."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from crm_upsell_connector.sandbox.scenario import (
    Scenario,
    SCompany,
    SDeal,
    SProduct,
)
from crm_upsell_connector.sandbox.server import (
    SandboxOptions,
    SandboxRuntime,
)
from crm_upsell_salesforce.sandbox.access import FieldAccess
from crm_upsell_salesforce.sandbox.common import (
    KEY_PREFIXES,
    MODSTAMP_FIELDS,
    TOOLING_PREFIX,
    Fail,
    make_id,
    sf_datetime,
)
from crm_upsell_salesforce.sandbox.schema import (
    FieldDef,
    SObject,
)
from crm_upsell_salesforce.sandbox.store import (
    Column,
    Computed,
    Cursor,
    Getter,
    Rec,
    Table,
)


class OrgBase:
    """The state of one emulated org; the API areas are mixins over it (``org.SalesforceSandbox``)."""

    scenario: Scenario
    options: SandboxOptions
    runtime: SandboxRuntime
    lock: threading.RLock
    schema: dict[str, SObject]
    tooling_schema: dict[str, SObject]
    tables: dict[str, Table]
    tooling_tables: dict[str, Table]
    ids: dict[str, str]  # scenario key -> Salesforce id
    tokens: dict[str, int]  # access token -> expiry (sandbox ms)
    cursors: OrderedDict[str, Cursor]
    jwt_public_key: str | None  # None: the key of sandbox_keypair()
    org_id: str
    pricebook_id: str
    admin_user: str
    _locators: int
    _companies: dict[str, SCompany]
    _products: dict[str, SProduct]
    _deals: dict[str, SDeal]
    _getters: dict[str, dict[str, Getter]]
    _computed: dict[str, dict[str, Computed]]
    access: FieldAccess
    query_timeout_rows: int | None  # a query matching more rows than this answers QUERY_TIMEOUT
    locator_batches: int | None  # a query locator dies after answering this many batches
    earliest_deleted_ms: dict[str, int]  # per object: the last physical delete (getDeleted's floor)
    refresh_tokens: set[str]  # refresh tokens the connected app accepts now
    rotate_refresh_tokens: bool  # the connected app's "Enable Refresh Token Rotation"

    def visible_field(self, sobj: SObject, name: str) -> FieldDef | None:
        """``sobj``'s field ``name`` as the integration user sees it: None where it does not exist or
        field-level security hides it (see :mod:`.access`); Tooling objects have no field security."""
        fdef = sobj.field(name)
        if fdef is None or sobj.name not in self.schema or self.access.readable(sobj.name, fdef):
            return fdef
        return None

    def field_editable(self, sobj: SObject, fdef: FieldDef) -> bool:
        return sobj.name not in self.schema or self.access.editable(sobj.name, fdef)

    def setup_rule(
        self, otype: str, values: dict[str, Any], rec: Rec | None, pending: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """A record error for a write that the rules of a setup object refuse (duplicates, grants that
        make no sense); ``pending`` are the values of earlier records of this call. None: allowed."""
        return None

    def _new_id(self, table: Table) -> str:
        table.counter += 1
        return make_id(KEY_PREFIXES.get(table.name) or TOOLING_PREFIX[table.name], table.counter)

    def _add_custom_field_row(self, table_enum: str, name: str, ms: int) -> Rec:
        table = self.tooling_tables["CustomField"]
        rec = Rec(self._new_id(table), None, ms, ms)
        rec.over = {
            "DeveloperName": name.removesuffix("__c"),
            "TableEnumOrId": table_enum,
            "NamespacePrefix": None,
            "Description": None,
        }
        table.add(rec)
        return rec

    # -- reading

    def value(self, otype: str, rec: Rec, fname: str) -> Any:
        """One field's internal value (datetimes as epoch ms, dates as ``YYYY-MM-DD``)."""
        over = rec.over
        if over is not None and fname in over:
            return over[fname]
        if fname == "Id":
            return rec.id
        if fname in MODSTAMP_FIELDS:
            return rec.modified_ms
        if fname == "CreatedDate":
            return rec.created_ms
        if fname == "IsArchived":
            table = self.tables.get(otype)
            return table is not None and rec.id in table.archived
        if fname == "IsDeleted":
            return rec.deleted_ms is not None
        if fname in ("CreatedById", "LastModifiedById"):
            return self.admin_user
        computed = self._computed[otype].get(fname)
        if computed is not None:
            return computed(rec)
        if rec.src is not None:
            getter = self._getters[otype].get(fname)
            if getter is not None:
                return getter(rec.src)
        fdef = self._sobject(otype).field(fname)
        if fdef is not None and fdef.type == "boolean":
            return False
        return None

    def _sobject(self, otype: str) -> SObject:
        return self.schema.get(otype) or self.tooling_schema[otype]

    @staticmethod
    def render(ftype: str, value: Any) -> Any:
        if value is None:
            return None
        if ftype == "datetime":
            return sf_datetime(int(value))
        return value

    def _attributes(self, otype: str, id_: str, version: str, tooling: bool) -> dict[str, str]:
        base = f"/services/data/{version}/tooling" if tooling else f"/services/data/{version}"
        return {"type": otype, "url": f"{base}/sobjects/{otype}/{id_}"}

    def record_json(
        self, otype: str, rec: Rec, columns: list[Column], version: str, tooling: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self._attributes(otype, rec.id, version, tooling)}
        parents: dict[str, Rec | None] = {}
        for col in columns:
            if col.relationship is None:
                out[col.name] = self.render(col.ftype, self.value(otype, rec, col.name))
                continue
            assert col.fk is not None and col.target is not None
            if col.relationship not in parents:
                pid = self.value(otype, rec, col.fk)
                parent = self.tables[col.target].live(pid) if isinstance(pid, str) else None
                parents[col.relationship] = parent
                out[col.relationship] = (
                    None
                    if parent is None
                    else {"attributes": self._attributes(col.target, parent.id, version, False)}
                )
            parent = parents[col.relationship]
            if parent is not None:
                out[col.relationship][col.name] = self.render(
                    col.ftype, self.value(col.target, parent, col.name)
                )
        return out

    # -- in-process helpers (tests) and /__sandbox routes

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def _table(self, otype: str) -> Table:
        for name, table in self.tables.items():
            if name.lower() == otype.lower():
                return table
        raise KeyError(f"unknown sObject {otype!r}")

    def salesforce_id(self, key: str) -> str:
        """The Salesforce id of a scenario record (``co-000001``, ``ct-...``, ``owner-0001``...)."""
        return self.ids[key]

    def planted(self) -> dict[str, str]:
        """Account Id -> persona."""
        return {self.ids[key]: persona for key, persona in self.scenario.planted.items()}

    def _known(self, raw: str) -> str:
        for name in self.schema:
            if name.lower() == raw.lower():
                return name
        raise Fail(404, "NOT_FOUND", "The requested resource does not exist")
