"""The pipeline for one connection: sync -> score -> plan -> apply, each step recorded as a run."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, func, select

from crm_upsell_connector.apply import Applier, ApplyReport
from crm_upsell_connector.config import Config, ConnectionConfig, format_validation_error, load_config
from crm_upsell_connector.connector import Connector, ConnectorContext, ConnectorPlugin, load_plugins
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.plan import Plan, build_plan
from crm_upsell_connector.rules.engine import RuleEngine
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.lock import RunLock
from crm_upsell_connector.store.repo import upsert
from crm_upsell_connector.store.runs import finish_run, start_run
from crm_upsell_connector.store.schema import recommendation_history, recommendations, task_keys
from crm_upsell_connector.sync import Progress, Syncer, SyncReport

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    """One configured connection with its plugin and store, ready to run steps."""

    config: Config
    name: str
    connection: ConnectionConfig
    plugin: ConnectorPlugin
    engine: Engine
    secrets: SecretResolver = field(default_factory=SecretResolver)
    clock: Callable[[], datetime] = utcnow
    #: how long a run waits for another run on the same connection before giving up.
    lock_wait_s: float = 0.0

    @classmethod
    def open(
        cls,
        config: Config,
        connection: str | None = None,
        *,
        secrets: SecretResolver | None = None,
        plugins: dict[str, ConnectorPlugin] | None = None,
    ) -> Session:
        name, conn_cfg = config.connection(connection)
        plugins = plugins if plugins is not None else load_plugins()
        plugin = plugins.get(conn_cfg.crm)
        if plugin is None:
            raise ConfigError(
                f"{config.source}: connections.{name}.crm: no connector named {conn_cfg.crm!r} is installed",
                hint=f"installed: {', '.join(sorted(plugins)) or 'none'}",
            )
        engine = open_store(config.store.url)
        return cls(config, name, conn_cfg, plugin, engine, secrets or SecretResolver())

    @classmethod
    def from_path(cls, path: Path | None, connection: str | None = None) -> Session:
        return cls.open(load_config(path), connection)

    def writing(self) -> RunLock:
        """Hold this for as long as the store is written: never two writers on one connection."""
        return RunLock(self.engine, self.name, wait_s=self.lock_wait_s)

    def settings(self) -> Any:
        try:
            return self.plugin.settings_model.model_validate(self.connection.settings)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(self.config.source, exc, ("connections", self.name, "settings"))
            ) from None

    @asynccontextmanager
    async def connector(self) -> AsyncIterator[Connector]:
        context = ConnectorContext(
            connection=self.name,
            account_fields=self.config.rules.features.crm_fields(),
            http=self.config.http,
        )
        connector = self.plugin.create(self.settings(), self.secrets, context)
        try:
            yield connector
        finally:
            await connector.close()

    # ---- steps --------------------------------------------------------------------------------

    async def sync(
        self, connector: Connector, *, full: bool = False, progress: Progress | None = None
    ) -> SyncReport:
        run_id = start_run(self.engine, self.name, "sync")
        try:
            report = await Syncer(
                self.engine, connector, self.name, self.config.sync, clock=self.clock, progress=progress
            ).run(full=full)
        except BaseException as exc:
            finish_run(self.engine, run_id, "failed", {"error": type(exc).__name__})
            raise
        finish_run(
            self.engine,
            run_id,
            "partial" if report.failed else "ok",
            {
                "records": report.records,
                "deleted": report.deleted,
                "calls": connector.stats.calls,
                "failed_streams": report.failed,
            },
        )
        return report

    def score(self) -> list[Recommendation]:
        """Features and rules for every account; the current recommendations are stored."""
        now = self.clock()
        rules = self.config.rules
        with self.engine.connect() as conn:
            rows = compute_features(conn, self.name, now, rules.features, rules.products)
            week_ago = now - timedelta(days=7)
            recent: Counter[str] = Counter(
                dict(
                    conn.execute(
                        select(task_keys.c.owner_id, func.count())
                        .where(task_keys.c.connection == self.name, task_keys.c.created_at >= week_ago)
                        .group_by(task_keys.c.owner_id)
                    ).all()
                )
            )
        recs = RuleEngine(rules).evaluate(
            rows, now, owner_open_tasks_this_week={k: v for k, v in recent.items() if k}
        )
        self._save_recommendations(recs, now)
        return recs

    def _save_recommendations(self, recs: list[Recommendation], now: datetime) -> None:
        rows = [_rec_row(self.name, rec, now) for rec in recs]
        with self.engine.begin() as conn:
            previous = {
                r.account_id: (r.kind, r.product_sku, r.segment, r.blocked_by)
                for r in conn.execute(
                    select(
                        recommendations.c.account_id,
                        recommendations.c.kind,
                        recommendations.c.product_sku,
                        recommendations.c.segment,
                        recommendations.c.blocked_by,
                    ).where(recommendations.c.connection == self.name)
                )
            }
            changed = [
                r
                for r in rows
                if previous.get(r["account_id"])
                != (r["kind"], r["product_sku"], r["segment"], r["blocked_by"])
            ]
            conn.execute(delete(recommendations).where(recommendations.c.connection == self.name))
            upsert(conn, recommendations, rows)
            if changed:
                conn.execute(recommendation_history.insert(), changed)

    def plan(self, recs: list[Recommendation]) -> Plan:
        with self.engine.connect() as conn:
            return build_plan(conn, self.name, recs, self.config.rules, self.clock())

    async def apply(self, connector: Connector, plan: Plan, progress: Progress | None = None) -> ApplyReport:
        run_id = start_run(self.engine, self.name, "apply")
        try:
            report = await Applier(
                self.engine, connector, self.name, batch_size=connector.write_batch_size, progress=progress
            ).apply(plan, run_id)
        except BaseException as exc:
            finish_run(self.engine, run_id, "failed", {"error": type(exc).__name__})
            raise
        finish_run(
            self.engine,
            run_id,
            "ok" if report.ok else "partial",
            {"updated": report.updated, "tasks_created": report.tasks_created, "failed": len(report.failed)},
        )
        return report


def _rec_row(connection: str, rec: Recommendation, now: datetime) -> dict[str, Any]:
    proposal = rec.proposal
    return {
        "connection": connection,
        "account_id": rec.account_id,
        "run_id": None,
        "computed_at": now,
        "score": rec.score,
        "segment": rec.segment,
        "tags": list(rec.tags),
        "kind": proposal.kind if proposal else None,
        "product_sku": proposal.product_sku if proposal else None,
        "uplift": proposal.uplift if proposal else None,
        "reason": rec.reason,
        "rule": proposal.rule if proposal else None,
        "blocked_by": rec.blocked_by,
        "factors": [f.model_dump(mode="json") for f in rec.factors],
        "facts": rec.model_dump(mode="json")["facts"],
    }
