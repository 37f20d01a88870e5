"""``config.toml`` parsed into pydantic models; unknown keys are rejected with their path.

The file holds connections, store, sync and HTTP settings, and the rule sections (scoring,
segments, products, upgrades, cross-sell, retention, guardrails, tasks, features), which
``rules.config`` validates and compiles. Secrets appear only as references (see secrets.py).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_connector.rules.config import RulesConfig, key_text, load_rules

APP_NAME = "crm-upsell-connector"
CONFIG_ENV = "CRM_UPSELL_CONFIG"
# The top-level sections that belong to the rule engine ([scoring], [[products]], ...).
RULE_SECTIONS = frozenset(RulesConfig.model_fields)
_CONNECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


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


class ConnectionConfig(_Strict):
    crm: str
    settings: dict[str, Any] = Field(default_factory=dict)


class Config(_Strict):
    connections: dict[str, ConnectionConfig]
    store: StoreSettings = Field(default_factory=StoreSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    rules: RulesConfig
    source: str = "config.toml"

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
    first = exc.errors()[0]
    path = ".".join(
        f"[{p}]" if isinstance(p, int) else key_text(p) for p in (*prefix, *first["loc"])
    ).replace(".[", "[")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against config.example.toml)"
    elif first["type"] == "missing":
        message = "required key is missing"
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"


def parse_config(data: dict[str, Any], source: str = "config.toml") -> Config:
    """Validate a parsed TOML document; raises ConfigError/RuleError with the key's path."""
    rule_data = {k: v for k, v in data.items() if k in RULE_SECTIONS}
    rest = {k: v for k, v in data.items() if k not in RULE_SECTIONS}
    rules = load_rules(rule_data, source)
    try:
        return Config.model_validate({**rest, "rules": rules, "source": source})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_config(path: Path | None = None) -> Config:
    path = path or default_config_path()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {source}", hint="create one with 'crm-upsell init' or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_config(data, source)
