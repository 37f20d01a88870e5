"""The pipeline for one connection: sync -> score -> plan -> apply, each step recorded as a run.

``Session.run_pipeline`` runs all four steps as one recorded run (the ``run`` command and every
scheduled run use it); a ``PipelineView`` lets the caller show progress without the pipeline
knowing whether a terminal or a log collector is watching.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import Engine, delete, select

from crm_upsell_connector.apply import Applier, ApplyReport
from crm_upsell_connector.config import Config, ConnectionConfig, load_config, problems_error
from crm_upsell_connector.config_errors import describe_errors
from crm_upsell_connector.connector import Connector, ConnectorContext, ConnectorPlugin, load_plugins
from crm_upsell_connector.credentials import credential_cache
from crm_upsell_connector.currency import refresh_home_currency, resolve_home_currency
from crm_upsell_connector.errors import ConfigError, StopRequested, UnsupportedError
from crm_upsell_connector.experiment import holdout, holdout_salt
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.features.product_tasks import owner_tasks_since
from crm_upsell_connector.guard import Breach, enforce
from crm_upsell_connector.outcomes import record_proposals, refresh_outcomes
from crm_upsell_connector.plan import Plan, accounts_with_open_upsell_tasks, build_plan
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.engine import RuleEngine
from crm_upsell_connector.rules.result import Recommendation, segment_counts
from crm_upsell_connector.run_errors import error_summary, failure_rows, failure_status, step_error
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.lock import RunLock
from crm_upsell_connector.store.repo import upsert
from crm_upsell_connector.store.runs import close_abandoned_runs, finish_run, start_run
from crm_upsell_connector.store.schema import recommendation_history, recommendations
from crm_upsell_connector.sync import Progress, Syncer, SyncReport
from crm_upsell_connector.usage.features import attach_usage
from crm_upsell_connector.usage.stream import UsageSyncer

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class PipelineView(Protocol):
    """What a caller of ``run_pipeline`` shows as the steps go by (a terminal, a log, nothing)."""

    def progress(self, label: str) -> AbstractContextManager[Progress]: ...
    def synced(self, report: SyncReport) -> None: ...
    def scored(self, recs: list[Recommendation]) -> None: ...
    def planned(self, plan: Plan) -> None: ...
    def applied(self, report: ApplyReport) -> None: ...


class QuietView:
    """Shows nothing."""

    def progress(self, label: str) -> AbstractContextManager[Progress]:
        return nullcontext(lambda _what, _n: None)

    def synced(self, report: SyncReport) -> None:
        pass

    def scored(self, recs: list[Recommendation]) -> None:
        pass

    def planned(self, plan: Plan) -> None:
        pass

    def applied(self, report: ApplyReport) -> None:
        pass


@dataclass
class PipelineReport:
    """The outcome of one sync -> score -> plan -> apply run, as recorded in the runs table."""

    run_id: int
    status: str  # ok, partial (a stream or a write failed), dry-run
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry-run")


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
    #: set from a signal handler: the run stops at its next checkpoint (a committed page or batch).
    stop: threading.Event | None = None
    #: let a plan over an ``[apply]`` threshold through once (``--allow-mass-change``).
    allow_mass_change: bool = False
    #: how this session's runs were started: manual (a command), schedule (a tick), worker (a retry).
    trigger: str = "manual"
    _lock: RunLock | None = field(default=None, init=False, repr=False)
    #: the pipeline run in progress, which the sync and apply steps are recorded under.
    _parent_run: int | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(
        cls,
        config: Config,
        connection: str | None = None,
        *,
        secrets: SecretResolver | None = None,
        plugins: dict[str, ConnectorPlugin] | None = None,
        engine: Engine | None = None,
    ) -> Session:
        name, conn_cfg = config.connection(connection)
        plugins = plugins if plugins is not None else load_plugins()
        plugin = plugins.get(conn_cfg.crm)
        if plugin is None:
            raise ConfigError(
                f"{config.source}: connections.{name}.crm: no connector named {conn_cfg.crm!r} is installed",
                hint=f"installed: {', '.join(sorted(plugins)) or 'none'}",
            )
        # A mistake in the connection's settings is reported before the store is touched.
        _validated_settings(config, name, conn_cfg, plugin)
        engine = engine if engine is not None else open_store(config.store.url)
        return cls(config, name, conn_cfg, plugin, engine, secrets or SecretResolver())

    @classmethod
    def from_path(cls, path: Path | None, connection: str | None = None) -> Session:
        return cls.open(load_config(path), connection)

    @property
    def rules(self) -> RulesConfig:
        return self.config.rules_for(self.name)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this for as long as the store is written: never two writers on one connection.

        Whoever holds the lock knows that no other run of this connection is alive, so runs still
        marked running were cut short (a killed process or host) and are marked interrupted.
        """
        with RunLock(self.engine, self.name, wait_s=self.lock_wait_s) as lock:
            self._lock = lock
            try:
                close_abandoned_runs(self.engine, self.name)
                yield
            finally:
                self._lock = None

    def _guard(self) -> None:
        """Before each commit: stop if the run lock may have been lost (see RunLock.ensure_held)."""
        if self._lock is not None:
            self._lock.ensure_held()

    def settings(self) -> Any:
        return _validated_settings(self.config, self.name, self.connection, self.plugin)

    @asynccontextmanager
    async def connector(self) -> AsyncIterator[Connector]:
        context = ConnectorContext(
            connection=self.name,
            account_fields=tuple(
                dict.fromkeys((*self.rules.features.crm_fields(), *self.config.usage.crm_fields()))
            ),
            http=self.config.http,
            credentials=credential_cache(self.engine, self.name),
        )
        self.secrets.note_config_keys(self.name, self.connection.settings)
        connector = self.plugin.create(self.settings(), self.secrets, context)
        try:
            yield connector
        finally:
            await connector.close()

    # ---- steps --------------------------------------------------------------------------------

    async def sync(
        self, connector: Connector, *, full: bool = False, progress: Progress | None = None
    ) -> SyncReport:
        run_id = start_run(self.engine, self.name, "sync", trigger=self.trigger, parent_id=self._parent_run)
        try:
            await refresh_home_currency(self.engine, connector, self.name, self.clock())
            report = await Syncer(
                self.engine,
                connector,
                self.name,
                self.config.sync,
                clock=self.clock,
                progress=progress,
                stop=self.stop,
                guard=self._guard,
            ).run(full=full)
            await self.usage_syncer(progress).run(report, full=full)
        except BaseException as exc:
            finish_run(self.engine, run_id, failure_status(exc), step_error(exc))
            raise
        finish_run(
            self.engine,
            run_id,
            "partial" if report.failed else "ok",
            {
                "records": report.records,
                "streams": {name: s.records for name, s in report.streams.items()},
                "deleted": report.deleted,
                "calls": connector.stats.calls,
                "failed_streams": report.failed,
                "usage": {k: {n: v for n, v in m.items() if n != "line"} for k, m in report.usage.items()},
            },
        )
        return report

    def usage_syncer(self, progress: Progress | None = None) -> UsageSyncer:
        """The usage streams of this connection (``[[usage.sources]]``), as ``sync`` runs them."""
        return UsageSyncer(
            self.engine,
            self.config.usage,
            self.name,
            self.secrets,
            clock=self.clock,
            skew=timedelta(seconds=self.config.sync.clock_skew_s),
            progress=progress,
            stop=self.stop,
            guard=self._guard,
        )

    def score(self) -> list[Recommendation]:
        """Features and rules for every account; the current recommendations are stored."""
        now = self.clock()
        rules = self.rules
        with self.engine.connect() as conn:
            home = resolve_home_currency(conn, self.name, rules.tasks.currency)
            rows = compute_features(conn, self.name, now, rules.features, rules.products, home)
            rows = attach_usage(conn, self.name, now, self.config.usage, rows)
            # The week of the cap is the last 7 days; the CRM's tasks count as well as this store's.
            recent = owner_tasks_since(conn, self.name, now - timedelta(days=7))
        recs = RuleEngine(rules, currency=home).evaluate(
            rows,
            now,
            owner_open_tasks_this_week=recent,
            held_out=self._holdout(),
        )
        self._save_recommendations(recs, now)
        return recs

    def _holdout(self) -> Callable[[str], bool] | None:
        """The holdout draw (None when off). An account with an open proposal task, in the CRM or
        queued in the outbox, is never drawn: its proposal is already out."""
        share = self.config.experiment.holdout_share
        if share <= 0:
            return None
        drawn = holdout(holdout_salt(self.engine, self.name), share)
        with self.engine.connect() as conn:
            busy = accounts_with_open_upsell_tasks(conn, self.name)
        return lambda account_id: account_id not in busy and drawn(account_id)

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
            return build_plan(conn, self.name, recs, self.rules, self.clock())

    def families(self) -> dict[str, str]:
        """Catalogue SKU -> product family."""
        return {sku: p.family for sku, p in self.rules.compiled.products.items()}

    def refresh_outcomes(self) -> int:
        """Look up what happened to every proposal in the synced data and store it."""
        with self.engine.begin() as conn:
            home = resolve_home_currency(conn, self.name, self.rules.tasks.currency)
            return refresh_outcomes(conn, self.name, self.families(), self.clock(), home_currency=home)

    async def check_before_writing(self, connector: Connector, plan: Plan) -> list[Breach]:
        """Raise before any write when ``plan`` is over an ``[apply]`` threshold (``MassChangeError``)
        or the CRM lacks the product's fields (``ConfigError``: run setup). Returns the breaches let
        through by ``allow_mass_change``."""
        if plan.empty:
            return []
        allowed = enforce(plan, self.config.apply, allow=self.allow_mass_change)
        try:
            schema = await connector.describe(sample_size=0, catalogue=False)
        except UnsupportedError:
            return allowed
        missing = schema.missing_product_fields()
        if missing:
            raise ConfigError(
                f"the CRM lacks the product's fields ({', '.join(missing)}); nothing was written",
                hint="run 'crm-upsell setup' to create them, then run again",
            )
        return allowed

    async def apply(self, connector: Connector, plan: Plan, progress: Progress | None = None) -> ApplyReport:
        run_id = start_run(self.engine, self.name, "apply", trigger=self.trigger, parent_id=self._parent_run)
        calls_before = connector.stats.calls
        try:
            allowed = await self.check_before_writing(connector, plan)
            with self.engine.begin() as conn:
                # Before anything is sent: a task queued now is followed even if this run stops early.
                record_proposals(
                    conn, self.name, plan, self.families(), self.config.outcomes.attribution_days, run_id
                )
            report = await Applier(
                self.engine,
                connector,
                self.name,
                batch_size=connector.write_batch_size,
                progress=progress,
                stop=self.stop,
                guard=self._guard,
            ).apply(plan, run_id)
        except BaseException as exc:
            finish_run(self.engine, run_id, failure_status(exc), step_error(exc))
            raise
        self.refresh_outcomes()
        finish_run(
            self.engine,
            run_id,
            "stopped" if report.stopped else "ok" if report.ok else "partial",
            {
                "updated": report.updated,
                "tasks_created": report.tasks_created,
                "gone": report.gone,
                "failed": len(report.failed),
                "failures": failure_rows(report),
                "calls": connector.stats.calls - calls_before,
                **({"guard_allowed": [b.describe() for b in allowed]} if allowed else {}),
                "segments": segment_counts(plan.recommendations),
            },
        )
        if report.stopped:
            raise StopRequested(
                f"apply stopped on request after {report.updated} update(s) and {report.tasks_created} task(s)",
                hint="the writes not sent yet stay queued for the next run",
            )
        return report

    async def run_pipeline(
        self,
        connector: Connector,
        *,
        full: bool = False,
        dry_run: bool = False,
        trigger: str = "cli",
        view: PipelineView | None = None,
        details: dict[str, Any] | None = None,
    ) -> PipelineReport:
        """Sync, score, plan and apply as one run, recorded with its summary in the runs table.

        Nothing is written to the CRM when a stream failed to sync: scoring half-synced data could
        propose the wrong thing. Errors are recorded on the run (one line, no secrets) and raised.
        """
        view = view or QuietView()
        trigger = self.trigger if trigger == "cli" else trigger
        summary: dict[str, Any] = {
            "trigger": trigger,
            "dry_run": dry_run,
            **worker_identity(),
            **(details or {}),
        }
        # Recorded at the start too, so that a run cut short still shows who ran it and for which tick.
        run_id = start_run(self.engine, self.name, "run", dict(summary), trigger=trigger)
        self._parent_run = run_id
        try:
            with view.progress("syncing") as advance:
                synced = await self.sync(connector, full=full, progress=advance)
            summary.update(
                records=synced.records,
                streams={name: s.records for name, s in synced.streams.items()},
                deleted=synced.deleted,
                calls=connector.stats.calls,
                failed_streams=synced.failed,
                usage={k: {n: v for n, v in m.items() if n != "line"} for k, m in synced.usage.items()},
            )
            view.synced(synced)
            if synced.failed:
                return self._finish(run_id, "partial", summary)
            self._check_stop()
            recs = self.score()
            summary["accounts"] = len(recs)
            summary["proposals"] = sum(1 for r in recs if r.proposal is not None)
            summary["segments"] = segment_counts(recs)
            view.scored(recs)
            plan = self.plan(recs)
            summary.update(updates_planned=len(plan.changes), tasks_planned=len(plan.tasks))
            view.planned(plan)
            if dry_run:
                return self._finish(run_id, "dry-run", summary)
            self._check_stop()
            with view.progress("writing") as advance:
                applied = await self.apply(connector, plan, progress=advance)
            summary.update(
                updated=applied.updated,
                tasks_created=applied.tasks_created,
                write_failures=len(applied.failed),
                failures=failure_rows(applied),
                calls=connector.stats.calls,
            )
            view.applied(applied)
            status = "ok" if applied.ok else "partial"
            return self._finish(run_id, status, summary)
        except BaseException as exc:
            summary.update(error_summary(exc))
            summary["calls"] = connector.stats.calls
            finish_run(self.engine, run_id, failure_status(exc), summary)
            raise
        finally:
            self._parent_run = None

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested("stopped on request between steps")

    def _finish(self, run_id: int, status: str, summary: dict[str, Any]) -> PipelineReport:
        finish_run(self.engine, run_id, status, summary)
        return PipelineReport(run_id, status, summary)


def _validated_settings(
    config: Config, name: str, connection: ConnectionConfig, plugin: ConnectorPlugin
) -> Any:
    """The connection's settings as the connector's model; every problem at once, with its path."""
    try:
        return plugin.settings_model.model_validate(connection.settings)
    except ValidationError as exc:
        problems = describe_errors(
            config.source, exc, plugin.settings_model, ("connections", name, "settings")
        )
        raise problems_error(problems) from None


def worker_identity() -> dict[str, Any]:
    """Which process made a run: shown by ``status`` when several workers share a store."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


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
