"""The interface every CRM connector implements, and how the core finds connectors.

The core never imports a connector package: connectors register a :class:`ConnectorPlugin` in the
entry-point group ``crm_upsell_connector.connectors`` and the core loads them from there.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.errors import UnsupportedError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.models import (
    CheckResult,
    FieldSpec,
    FieldUpdate,
    Page,
    Stream,
    TaskDraft,
    WriteResult,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from crm_upsell_connector.credentials import CredentialCache
    from crm_upsell_connector.sandbox.scenario import Scenario
    from crm_upsell_connector.sandbox.server import SandboxOptions
    from crm_upsell_connector.secrets import SecretResolver

ENTRY_POINT_GROUP = "crm_upsell_connector.connectors"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectorContext:
    """What the core tells a connector when it creates one."""

    connection: str
    #: CRM field names on accounts the configuration maps into features (read them, no others).
    account_fields: tuple[str, ...] = ()
    http: HttpSettings = field(default_factory=lambda: HttpSettings())
    #: where credentials the CRM rotates are kept (None: the connector keeps nothing across runs).
    credentials: CredentialCache | None = None


@dataclass
class CallStats:
    """API calls made by one connector instance, for reports and benchmarks."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


class Connector(ABC):
    """One live connection to one CRM account (portal, org)."""

    #: connector stream name -> the canonical stream its records belong to, in the order to sync.
    streams: Mapping[str, Stream]
    #: how many writes the CRM takes in one batch call (the outbox sends batches of this size).
    write_batch_size: int = 100

    @property
    @abstractmethod
    def stats(self) -> CallStats:
        """Calls made so far."""

    @abstractmethod
    async def check(self) -> list[CheckResult]:
        """Verify credentials, permissions and that the product's fields exist."""

    @abstractmethod
    def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        """Pages of records changed at or after ``since`` (everything when ``since`` is None).

        ``resume`` continues a full read that was interrupted (the ``resume`` of the last page
        committed). Each page's ``watermark`` is the modification stamp up to which the stream is
        known to be read completely. ``skip_ids`` are records already stored whose modification
        stamp equals ``since``: the connector may leave them out (and spare their lookups) when the
        CRM still reports exactly that stamp for them.
        """

    @abstractmethod
    def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """Pages whose ``deleted_ids`` list records archived or deleted in the CRM."""

    @abstractmethod
    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the product's fields where missing; return the names created. Idempotent."""

    @abstractmethod
    async def update_accounts(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Write product fields on accounts; one result per update (``ref`` = account id)."""

    @abstractmethod
    async def create_tasks(self, drafts: Sequence[TaskDraft]) -> list[WriteResult]:
        """Create follow-up tasks; one result per draft (``ref`` = the draft's key)."""

    @abstractmethod
    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """The CRM ids of tasks this product created, by key (for recovery after a crash)."""

    async def home_currency(self) -> str | None:
        """The org's home (corporate) currency as an ISO 4217 code, read from the CRM.

        ``None`` where the CRM does not say (the ``[tasks] currency`` override, if set, then
        applies). Connectors override this; the default makes no call.
        """
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        """What the CRM holds that the product can use (``crm-upsell discover``, ``check``).

        Returns a :class:`~crm_upsell_connector.discovery.CrmSchema`: the ``account`` and ``task``
        objects with every field (API name, label, canonical kind, the CRM's type, writable), the
        fill count of each account field over a sample of up to ``sample_size`` accounts (no sample
        read when 0), the configured account fields resolved to CRM fields (``mapped``), where the
        product's own fields live (``product_fields``) and, when ``catalogue`` is true (a full
        discovery), the ``contact`` and ``deal`` objects too and the CRM's products (with SKUs) and
        owners (``None`` otherwise). Read-only: it writes nothing.

        Raises ``AuthError`` / ``APIError`` as reads do, and ``UnsupportedError`` by default (a
        connector that cannot describe its CRM: ``check`` says so, ``run`` writes without the check).
        """
        raise UnsupportedError(
            f"the {type(self).__name__} connector cannot describe its CRM",
            hint="update the connector package",
        )

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ConnectorPlugin(Protocol):
    """What a connector package registers under the entry-point group."""

    name: str
    title: str
    #: pydantic model of the CRM-specific settings in a connection's config section.
    settings_model: type[BaseModel]

    def create(self, settings: BaseModel, secrets: SecretResolver, context: ConnectorContext) -> Connector:
        """A connector for one connection; may resolve secrets, never logs them."""

    def sandbox_app(self, scenario: Scenario, options: SandboxOptions) -> ASGIApp:
        """The ASGI app emulating this CRM, seeded from the shared scenario."""

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        """Settings (and secret references) that point a connection at a running sandbox."""

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        """Environment variables holding the sandbox's credentials (name -> value)."""


class PluginBase:
    """The parts of a :class:`ConnectorPlugin` that are the same for every CRM.

    A connector package sets ``name``, ``title``, ``settings_model``, ``connector_class`` and
    ``sandbox_module`` (whose ``create_app(scenario, options)`` builds its sandbox, imported only
    when a sandbox is wanted), and writes ``sandbox_settings`` / ``sandbox_secrets`` itself.
    """

    name: str
    title: str
    settings_model: type[BaseModel]
    connector_class: Callable[[Any, SecretResolver, ConnectorContext], Connector]
    sandbox_module: str

    def create(self, settings: BaseModel, secrets: SecretResolver, context: ConnectorContext) -> Connector:
        if not isinstance(settings, self.settings_model):
            settings = self.settings_model.model_validate(settings.model_dump())
        return self.connector_class(settings, secrets, context)

    def sandbox_app(self, scenario: Scenario, options: SandboxOptions) -> ASGIApp:
        app: ASGIApp = import_module(self.sandbox_module).create_app(scenario, options)
        return app


def fields_check(item: str, expected: Sequence[str], missing: Sequence[str], permission: str) -> CheckResult:
    """The ``check`` line for the product's fields on one object: present, or what to run."""
    if missing:
        return CheckResult(
            item=item,
            ok=False,
            detail=f"missing {', '.join(missing)}: run 'crm-upsell setup' to create them (needs {permission})",
        )
    return CheckResult(item=item, ok=True, detail=f"{len(expected)} fields present")


def load_plugins() -> dict[str, ConnectorPlugin]:
    """Every connector that loads; one that fails to load is logged and skipped."""
    plugins: dict[str, ConnectorPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            plugin: ConnectorPlugin = obj() if isinstance(obj, type) else obj
        except Exception as exc:  # a broken third-party package must not take the CLI down
            log.warning("connector %r failed to load and is skipped: %s", ep.name, exc)
            continue
        plugins[ep.name] = plugin
    return plugins
