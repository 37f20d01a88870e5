"""The ``[[usage.sources]]`` section: where usage lives, how its rows match CRM accounts, its metrics.

A source is either a SQL ``query`` over a SQLAlchemy ``url`` (any dialect that is installed) or a
CSV/Parquet file ``path``. Each row carries a ``key`` column (a CRM id, a domain, or the value of a
mapped CRM field) and named metric columns; each metric becomes a feature of the same name, with
its relative change over each of ``trend_days`` as ``<metric>_change_<N>d``. Credentials are
secret references (``password = "keyring:NAME"``, or the whole ``url`` as a reference), never
values in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.features import FEATURE_SCHEMA, FeatureSpec
from crm_upsell_connector.secrets import parse_ref

MatchBy = Literal["id", "domain", "field"]
_SINCE = re.compile(r"(?<![:\w]):since\b")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FILE_FORMATS = ("csv", "parquet")
# Query-string parameters that carry credentials in some dialects' URLs (password=, token=...).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|credential|apikey|api_key", re.IGNORECASE)


def uses_since(query: str) -> bool:
    """Whether a query takes the ``:since`` bind parameter (an incremental read)."""
    return _SINCE.search(query) is not None


def is_secret_ref(value: str) -> bool:
    return value.startswith(("keyring:", "env:"))


def _check_ref(value: str) -> None:
    """A secret reference, or a ValueError (so that pydantic names the key) for a pasted value."""
    try:
        parse_ref(value)
    except ConfigError as exc:
        raise ValueError(exc.one_line()) from None


class UsageMetric(BaseModel):
    """One metric column of a source; the feature name is the key it is listed under."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(min_length=1, description="the column in the source's rows")
    description: str = ""


class UsageSource(BaseModel):
    """One ``[[usage.sources]]`` entry."""

    model_config = ConfigDict(extra="forbid")

    name: str
    #: SQL sources: a SQLAlchemy URL without a password, or a secret reference holding the whole URL.
    url: str | None = None
    #: secret reference for the database password, put into ``url`` when the source is read.
    password: str | None = None
    query: str | None = None
    #: file sources: a CSV or Parquet file (relative paths are read from the config file's folder).
    path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    #: the column holding what identifies the account, and what it is.
    key: str = Field(min_length=1)
    match: MatchBy = "domain"
    #: with match = "field": the CRM account field (an external id) the key is compared with.
    crm_field: str | None = None
    metrics: dict[str, UsageMetric]
    #: the day each row's values hold for (a date or timestamp column); default: the day of the sync.
    date_column: str | None = None
    #: the rows' modification stamp: incremental reads ask only for rows stamped since the last one.
    cursor_column: str | None = None
    trend_days: list[int] = Field(default_factory=lambda: [30, 90])
    chunk_rows: int = Field(10_000, ge=100, le=1_000_000)
    #: the connections this source serves (default: all).
    connections: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"source name {value!r} must be lower-case letters, digits or '_' (up to 40)")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, UsageMetric]) -> dict[str, UsageMetric]:
        if not value:
            raise ValueError("list at least one metric: name = { column = 'COLUMN' }")
        for name in value:
            if not name.isidentifier() or name.startswith("_") or not name.isascii():
                raise ValueError(f"metric name {name!r} must be a plain identifier (letters, digits, _)")
            if name in FEATURE_SCHEMA:
                raise ValueError(f"metric name {name!r} is already a built-in feature")
        return value

    @field_validator("trend_days")
    @classmethod
    def _trends(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 3660 for d in value) or len(set(value)) != len(value):
            raise ValueError("trend_days are distinct whole days between 1 and 3660")
        return sorted(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None:
            _check_ref(value)  # a pasted password is refused with the usual hint
        return value

    @model_validator(mode="after")
    def _shape(self) -> UsageSource:
        sql = self.query is not None or self.url is not None
        if sql == (self.path is not None):
            raise ValueError("give either url and query (a SQL source) or path (a CSV or Parquet file)")
        if sql:
            self._check_sql()
        else:
            assert self.path is not None
            if self.format is None:
                suffix = Path(self.path).suffix.lower().lstrip(".")
                if suffix not in FILE_FORMATS:
                    raise ValueError(
                        f"cannot tell the format of {self.path!r}: set format = 'csv' or 'parquet'"
                    )
                self.format = "csv" if suffix == "csv" else "parquet"
            if self.password is not None:
                raise ValueError("password only applies to a SQL source")
        if (self.match == "field") != (self.crm_field is not None):
            raise ValueError("crm_field is needed with match = 'field', and only then")
        return self

    def _check_sql(self) -> None:
        if self.url is None or self.query is None:
            raise ValueError("a SQL source needs both url and query")
        if is_secret_ref(self.url):
            _check_ref(self.url)
        else:
            try:
                url = make_url(self.url)
            except (ArgumentError, ValueError):
                raise ValueError(
                    "url is not a SQLAlchemy URL (like 'postgresql+psycopg://reader@db:5432/product')"
                ) from None
            if url.password is not None:
                raise ValueError(
                    "url holds a password: remove it and give password = 'keyring:NAME' "
                    "(or put the whole URL in the keyring and write url = 'keyring:NAME')"
                )
            secret = next((k for k in url.query if _SECRET_PARAM.search(k)), None)
            if secret is not None:
                raise ValueError(
                    f"url carries {secret!r} in its query string: put the whole URL in the keyring "
                    "and write url = 'keyring:NAME' (or url = 'env:VARIABLE')"
                )
        if uses_since(self.query) != (self.cursor_column is not None):
            raise ValueError(
                "an incremental query needs both ':since' in its WHERE clause and cursor_column "
                "(the column holding each row's modification stamp); give both or neither"
            )

    @property
    def kind(self) -> str:
        return "sql" if self.query is not None else str(self.format)

    @property
    def stream(self) -> str:
        """The source's stream name in the sync state and reports."""
        return f"usage:{self.name}"

    def serves(self, connection: str) -> bool:
        return self.connections is None or connection in self.connections

    def feature_names(self) -> list[str]:
        return [
            name
            for metric in self.metrics
            for name in (metric, *(f"{metric}_change_{d}d" for d in self.trend_days))
        ]

    def columns(self) -> list[str]:
        """The columns read from each row, each once."""
        wanted = [self.key, *(m.column for m in self.metrics.values()), self.date_column, self.cursor_column]
        return list(dict.fromkeys(c for c in wanted if c is not None))

    def describe(self) -> str:
        """Where the source reads from, safe to show (no secrets, no query text)."""
        if self.path is not None:
            return f"{self.format} file {self.path}"
        assert self.url is not None
        if is_secret_ref(self.url):
            return f"SQL query (URL from {self.url})"
        return f"SQL query on {make_url(self.url).render_as_string(hide_password=True)}"


class UsageConfig(BaseModel):
    """The ``[usage]`` section."""

    model_config = ConfigDict(extra="forbid")

    sources: list[UsageSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> UsageConfig:
        names: dict[str, str] = {}
        features: dict[str, str] = {}
        for source in self.sources:
            if source.name in names:
                raise ValueError(f"two sources are named {source.name!r}")
            names[source.name] = source.name
            for feature in source.feature_names():
                if feature in FEATURE_SCHEMA:
                    raise ValueError(f"source {source.name!r}: {feature!r} is already a built-in feature")
                if feature in features:
                    raise ValueError(
                        f"source {source.name!r}: feature {feature!r} is also made by source {features[feature]!r}"
                    )
                features[feature] = source.name
        return self

    def for_connection(self, connection: str) -> list[UsageSource]:
        return [s for s in self.sources if s.serves(connection)]

    def source(self, name: str) -> UsageSource | None:
        return next((s for s in self.sources if s.name == name), None)

    def crm_fields(self) -> tuple[str, ...]:
        """CRM account fields the connectors must read for matching (match = 'field')."""
        return tuple(dict.fromkeys(s.crm_field for s in self.sources if s.crm_field is not None))

    def feature_schema(self) -> dict[str, FeatureSpec]:
        """The features the sources add, for the rule compiler: metric values and their trends."""
        schema: dict[str, FeatureSpec] = {}
        for source in self.sources:
            for metric, spec in source.metrics.items():
                what = spec.description or f"{spec.column} from usage source {source.name}"
                schema[metric] = FeatureSpec("number", what)
                for days in source.trend_days:
                    schema[f"{metric}_change_{days}d"] = FeatureSpec(
                        "number", f"relative change of {metric} over {days} days (0.3 = up 30%)"
                    )
        return schema

    def resolve_paths(self, base: Path) -> None:
        """Make relative file paths relative to ``base`` (the config file's folder)."""
        for source in self.sources:
            if source.path is not None:
                path = Path(source.path).expanduser()
                source.path = str(path if path.is_absolute() else base / path)
