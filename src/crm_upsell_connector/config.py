"""``config.toml`` parsed into pydantic models; unknown keys are rejected with their path.

The file holds connections (each with its CRM settings, an optional schedule and an optional rule
file of its own), store, sync, HTTP and scheduler settings, and the rule sections (scoring,
segments, products, upgrades, cross-sell, retention, guardrails, tasks, features), which
``rules.config`` validates and compiles. Secrets appear only as references (see secrets.py).
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from crm_upsell_connector.config_errors import describe_errors
from crm_upsell_connector.errors import ConfigError, RuleError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.rules.config import RulesConfig, key_text, load_rules
from crm_upsell_connector.usage.config import UsageConfig

APP_NAME = "crm-upsell-connector"
CONFIG_ENV = "CRM_UPSELL_CONFIG"
# The top-level sections that belong to the rule engine ([scoring], [[products]], ...).
RULE_SECTIONS = frozenset(RulesConfig.model_fields)
_CONNECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_EVERY_S = 366 * 86400
# Crontab's weekday numbers: 0 (and 7) is Sunday.
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Interval ticks are counted from this instant, so every worker computes the same tick times and a
# 15-minute schedule fires at :00, :15, :30 and :45 wherever and whenever a worker started.
INTERVAL_ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)


def _top_keys() -> list[str]:
    return [k for k in Config.model_fields if k not in ("rules", "source")] + sorted(RULE_SECTIONS)


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_store_url() -> str:
    return "sqlite:///" + str(Path(platformdirs.user_data_dir(APP_NAME)) / "store.sqlite3")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Strict):
    url: str = Field(default_factory=default_store_url)

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("use 'sqlite:///PATH' or 'postgresql+psycopg://USER@HOST:PORT/DB'")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value


class SyncSettings(_Strict):
    parallel_streams: int = Field(4, ge=1, le=16)
    delete_check_hours: float = Field(6.0, ge=0)
    clock_skew_s: float = Field(60.0, ge=0, le=3600)


class ApplySettings(_Strict):
    """``[apply]``: the mass-change guard (see ``guard.py``); a plan over a threshold is not applied."""

    #: share of the accounts whose proposed product (or proposal kind) a plan changes.
    max_proposal_change_share: float = Field(0.25, gt=0, le=1)
    #: share of the accounts whose segment a plan changes.
    max_segment_change_share: float = Field(0.25, gt=0, le=1)
    #: follow-up tasks one run may create (the first run included).
    max_tasks: int = Field(500, ge=1)
    #: below this many accounts the share thresholds do not apply (a handful of accounts swings them).
    min_accounts: int = Field(20, ge=0)


def parse_every(value: str) -> float:
    """``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"`` as seconds."""
    match = _EVERY.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not an interval: write a number and a unit, like '15m', '2h' or '90s'"
        )
    seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds < 1:
        raise ValueError("the interval must be at least 1s")
    if seconds > _MAX_EVERY_S:
        raise ValueError("the interval must be at most 366d (use cron for rarer runs)")
    return seconds


def crontab_trigger(line: str, zone: ZoneInfo) -> CronTrigger:
    """A crontab line (minute hour day month weekday) as an APScheduler trigger.

    The weekday is read as crontab reads it (0 or 7 Sunday, 1 Monday, names too); APScheduler 3
    numbers weekdays from Monday = 0, so numbers are turned into names before it sees them.
    """
    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields (minute hour day month weekday), not {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_weekdays(weekday), timezone=zone
    )


def _crontab_weekdays(field: str) -> str:
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"weekday step {step_text!r} must be a positive number")
        if span == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            first = _weekday_number(low)
            last = _weekday_number(high) if dash else (6 if step else first)
            if dash and high.strip() == "7":
                last = 7
        if last < first:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step or 1))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday_number(text: str) -> int:
    text = text.strip()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    if text[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(text[:3])
    raise ValueError(f"weekday {text!r} must be 0-7 (0 and 7 are Sunday) or a name like mon")


class ScheduleSettings(_Strict):
    """When ``crm-upsell schedule`` runs a connection: a crontab line or a fixed interval."""

    cron: str | None = None
    every: str | None = None
    timezone: str = "UTC"
    enabled: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')") from None
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_every(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSettings:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron = '*/15 * * * *' or every = '15m'")
        if self.cron is not None:
            try:
                self.trigger()
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        return self

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger; every worker computes the same fire times from it."""
        zone = ZoneInfo(self.timezone)
        if self.cron is not None:
            return crontab_trigger(self.cron, zone)
        assert self.every is not None
        return IntervalTrigger(seconds=parse_every(self.every), start_date=INTERVAL_ANCHOR, timezone=zone)

    def describe(self) -> str:
        return f"cron '{self.cron}' ({self.timezone})" if self.cron else f"every {self.every}"


class SchedulerSettings(_Strict):
    """How ``crm-upsell schedule`` workers run: threads, retries after a failed run, heartbeat.

    The keys mean the same with either store: a SQLite store's single in-process worker and a
    PostgreSQL store's procrastinate workers (see ``crm_upsell_connector.jobs``).
    """

    #: connections one worker runs at the same time.
    threads: int = Field(4, ge=1, le=64)
    #: tries again after a failed run (API or store trouble), before the next regular run.
    retries: int = Field(3, ge=0, le=20)
    retry_backoff_s: float = Field(60.0, ge=0.1)
    retry_backoff_max_s: float = Field(900.0, ge=0.1)
    #: how often a worker records that it is alive (shown by ``crm-upsell status``).
    heartbeat_s: float = Field(3.0, ge=0.5, le=3600)
    #: a worker silent for this long is taken for dead: ``status`` says so and, on PostgreSQL,
    #: another worker takes its runs over. Default: 3 heartbeats, at least 10 s (see ``stalled_s``).
    stalled_after_s: float | None = Field(None, ge=1.0, le=86400)

    @property
    def stalled_s(self) -> float:
        """Seconds of silence after which a worker counts as dead (``stalled_after_s`` or its default)."""
        if self.stalled_after_s is not None:
            return self.stalled_after_s
        return max(10.0, 3 * self.heartbeat_s)

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> SchedulerSettings:
        if self.stalled_after_s is not None and self.stalled_after_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"stalled_after_s ({self.stalled_after_s:g}) must be at least twice heartbeat_s "
                f"({self.heartbeat_s:g}), or live workers would be taken for dead"
            )
        return self

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1`` after try ``attempt`` (1-based) failed."""
        return float(min(self.retry_backoff_max_s, self.retry_backoff_s * 2.0 ** (attempt - 1)))


class ExperimentSettings(_Strict):
    """The holdout: a share of the accounts that would get a proposal goes to a control group."""

    #: 0 (off) to 0.5; held-out accounts get no task and no proposal fields, only score and segment.
    holdout_share: float = Field(0.0, ge=0.0, le=0.5)


class OutcomeSettings(_Strict):
    """How ``crm-upsell outcomes`` attributes what happened to a proposal."""

    #: a deal for the proposed product (or its family) counts when opened within this many days.
    attribution_days: int = Field(90, ge=1, le=730)


class ReportSettings(_Strict):
    """``crm-upsell report``: where the scheduled worker also writes it after each run."""

    path: str | None = None


class ConnectionConfig(_Strict):
    crm: str
    settings: dict[str, Any] = Field(default_factory=dict)
    schedule: ScheduleSettings | None = None
    #: a TOML file of rule sections used for this connection instead of the top-level ones.
    rules: str | None = None


class Config(_Strict):
    connections: dict[str, ConnectionConfig]
    store: StoreSettings = Field(default_factory=StoreSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    apply: ApplySettings = Field(default_factory=ApplySettings)
    usage: UsageConfig = Field(default_factory=UsageConfig)
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
    outcomes: OutcomeSettings = Field(default_factory=OutcomeSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    rules: RulesConfig
    source: str = "config.toml"
    _connection_rules: dict[str, RulesConfig] = PrivateAttr(default_factory=dict)

    def rules_for(self, name: str) -> RulesConfig:
        """The rules of connection ``name``: its own rule file, or the top-level sections."""
        return self._connection_rules.get(name, self.rules)

    @field_validator("connections")
    @classmethod
    def _names(cls, value: dict[str, ConnectionConfig]) -> dict[str, ConnectionConfig]:
        if not value:
            raise ValueError("at least one [connections.NAME] section is needed")
        for name in value:
            if not _CONNECTION_NAME.match(name):
                raise ValueError(f"connection name {name!r} must be lower-case letters, digits, '-' or '_'")
        return value

    def connection(self, name: str | None) -> tuple[str, ConnectionConfig]:
        """The named connection, or the only one when no name is given."""
        if name is None:
            if len(self.connections) > 1:
                raise ConfigError(
                    f"{self.source}: several connections are configured ({', '.join(sorted(self.connections))})",
                    hint="choose one with --connection NAME",
                )
            name = next(iter(self.connections))
        if name not in self.connections:
            raise ConfigError(
                f"{self.source}: no connection named {name!r}",
                hint=f"configured: {', '.join(sorted(self.connections))}",
            )
        return name, self.connections[name]


def format_validation_error(source: str, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """The first problem of a pydantic error as 'file: dotted.path: what is wrong'."""
    return describe_errors(source, exc, Config, prefix, top_keys=TOP_KEYS)[0]


def problems_error(problems: list[str]) -> ConfigError:
    """One error for every problem found: the first on the line, all of them in ``problems``."""
    if len(problems) == 1:
        return ConfigError(problems[0], problems=tuple(problems))
    return ConfigError(f"{len(problems)} problems: " + "; ".join(problems), problems=tuple(problems))


def parse_config(data: dict[str, Any], source: str = "config.toml") -> Config:
    """Validate a parsed TOML document; raises ConfigError/RuleError with the key's path.

    Every problem of the file's shape is reported at once (rule sections and the rest together).
    """
    rule_data = {k: v for k, v in data.items() if k in RULE_SECTIONS}
    rest = {k: v for k, v in data.items() if k not in RULE_SECTIONS}
    problems: list[str] = []
    usage = UsageConfig()
    try:
        usage = _parse_usage(rest.pop("usage", {}), source)
    except ConfigError as exc:
        problems.extend(exc.problems or (exc.one_line(),))
    rules: RulesConfig | None = None
    try:
        rules = load_rules(rule_data, source, usage.feature_schema())
    except RuleError:
        raise
    except ConfigError as exc:
        problems.extend(exc.problems or (exc.one_line(),))
    try:
        config = Config.model_validate(
            {**rest, "usage": usage, "rules": rules or RulesConfig(), "source": source}
        )
    except ValidationError as exc:
        problems.extend(describe_errors(source, exc, Config, top_keys=TOP_KEYS))
    if problems:
        raise problems_error(problems) from None
    for name, connection in config.connections.items():
        if connection.rules is not None:
            config._connection_rules[name] = _load_rule_file(source, name, connection.rules, usage)
    for i, usage_source in enumerate(usage.sources):
        unknown = [c for c in usage_source.connections or () if c not in config.connections]
        if unknown:
            raise ConfigError(f"{source}: usage.sources[{i}].connections: no connection named {unknown[0]!r}")
    return config


def _parse_usage(data: Any, source: str) -> UsageConfig:
    """The ``[usage]`` section; file paths are made relative to the config file."""
    try:
        usage = UsageConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, ("usage",))) from None
    usage.resolve_paths(Path(source).parent)
    return usage


def _load_rule_file(source: str, name: str, ref: str, usage: UsageConfig) -> RulesConfig:
    """A connection's own rule file, relative to the config file; errors name that file."""
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = Path(source).parent / path
    data = _read_toml(
        path,
        missing=ConfigError(
            f"{source}: connections.{key_text(name)}.rules: no rule file at {path}",
            hint="give a path relative to the config file",
        ),
    )
    extra = sorted(set(data) - RULE_SECTIONS)
    if extra:
        raise ConfigError(
            f"{path}: {key_text(extra[0])}: not a rule section",
            hint=f"a rule file holds only {', '.join(sorted(RULE_SECTIONS))}",
        )
    return load_rules(data, str(path), usage.feature_schema())


TOP_KEYS = _top_keys()


def _read_toml(path: Path, *, missing: ConfigError) -> dict[str, Any]:
    """A TOML file's contents; ``missing`` when it does not exist, a one-line ConfigError otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise missing from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: Path | None = None) -> Config:
    path = path or default_config_path()
    data = _read_toml(
        path,
        missing=ConfigError(
            f"no config file at {path}", hint="create one with 'crm-upsell init' or pass --config PATH"
        ),
    )
    return parse_config(data, str(path))
