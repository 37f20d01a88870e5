"""Usage features: each metric's value in force today and its change over each trend window.

For every source of the connection, the stored history is read once, in key order, as a stream;
per key only the values in force today and ``N`` days ago are kept, then the key is matched to an
account. A metric is ``None`` for an account without usage (or whose key matched nothing);
``<metric>_change_<N>d`` is the relative change since the value in force ``N`` days ago
(``0.3`` = up 30%), ``None`` without a value that old or when that value was zero.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.store import schema
from crm_upsell_connector.usage.config import UsageConfig, UsageSource
from crm_upsell_connector.usage.matching import account_index

_STREAM_ROWS = 20_000


def _change(now: float | None, then: float | None) -> float | None:
    if now is None or then is None or then == 0:
        return None
    return round((now - then) / abs(then), 4)


def _key_histories(
    conn: sa.Connection, connection: str, source: UsageSource, until: date
) -> Iterator[tuple[str, list[date], list[dict[str, Any]]]]:
    """(key, days, metrics) per key, history rows up to ``until``, streamed in key order."""
    u = schema.usage_values
    query = (
        sa.select(u.c.key, u.c.observed_on, u.c.metrics)
        .where(u.c.connection == connection, u.c.source == source.name, u.c.observed_on <= until)
        .order_by(u.c.key, u.c.observed_on)
    )
    result = conn.execution_options(yield_per=_STREAM_ROWS).execute(query)
    key: str | None = None
    days: list[date] = []
    values: list[dict[str, Any]] = []
    for row_key, day, metrics in result:
        if row_key != key:
            if key is not None:
                yield key, days, values
            key, days, values = row_key, [], []
        days.append(day)
        values.append(metrics)
    if key is not None:
        yield key, days, values


def _source_features(
    source: UsageSource, today: date, days: list[date], values: list[dict[str, Any]]
) -> dict[str, Any]:
    current = values[-1]
    features: dict[str, Any] = {}
    past = {}
    for window in source.trend_days:
        at = bisect.bisect_right(days, today - timedelta(days=window))
        past[window] = values[at - 1] if at else None
    for metric in source.metrics:
        value = current.get(metric)
        features[metric] = value
        for window, then in past.items():
            features[f"{metric}_change_{window}d"] = _change(value, then.get(metric) if then else None)
    return features


def usage_features(
    conn: sa.Connection, connection: str, now: datetime, usage: UsageConfig
) -> dict[str, dict[str, Any]]:
    """account id -> its usage features (only accounts some source matched)."""
    today = now.astimezone(UTC).date()
    by_account: dict[str, dict[str, Any]] = {}
    for source in usage.for_connection(connection):
        index = account_index(conn, connection, source)
        for key, days, values in _key_histories(conn, connection, source, today):
            account = index.by_key.get(key)
            if account is None:
                continue
            by_account.setdefault(account, {}).update(_source_features(source, today, days, values))
    return by_account


def attach_usage(
    conn: sa.Connection,
    connection: str,
    now: datetime,
    usage: UsageConfig,
    rows: Iterator[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """``rows`` (features.compute_features) with every usage feature added; the SQL runs before return."""
    if not usage.sources:
        return rows
    found = usage_features(conn, connection, now, usage)
    blank = dict.fromkeys(usage.feature_schema())
    return _merge(rows, found, blank)


def _merge(
    rows: Iterator[dict[str, Any]], found: dict[str, dict[str, Any]], blank: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    for row in rows:
        row.update(blank)
        extra = found.pop(row["account_id"], None)
        if extra:
            row.update(extra)
        yield row


def usage_provenance(
    conn: sa.Connection, connection: str, account_id: str, now: datetime, usage: UsageConfig
) -> dict[str, str]:
    """feature -> where its value came from, for ``explain``: source, column, key and the value's day."""
    today = now.astimezone(UTC).date()
    u = schema.usage_values
    notes: dict[str, str] = {}
    for source in usage.sources:
        where = f"usage source {source.name} ({source.describe()})"
        if not source.serves(connection):
            for name in source.feature_names():
                notes[name] = f"{where}: does not serve this connection"
            continue
        index = account_index(conn, connection, source)
        keys = [k for k, a in index.by_key.items() if a == account_id]
        history = (
            conn.execute(
                sa.select(u.c.observed_on, u.c.metrics)
                .where(
                    u.c.connection == connection,
                    u.c.source == source.name,
                    u.c.key == keys[0],
                    u.c.observed_on <= today,
                )
                .order_by(u.c.observed_on)
            ).all()
            if keys
            else []
        )
        for metric, spec in source.metrics.items():
            if not history:
                why = f"no row matched by {source.match}" if not keys else f"no row for key {keys[0]!r}"
                notes[metric] = f"{where}, column {spec.column}: {why}"
            else:
                notes[metric] = (
                    f"{where}, column {spec.column}, key {keys[0]!r} (matched by {source.match}), "
                    f"value of {history[-1][0].isoformat()}"
                )
            days = [h[0] for h in history]
            for window in source.trend_days:
                at = bisect.bisect_right(days, today - timedelta(days=window))
                base = f"value of {days[at - 1].isoformat()}" if at else f"no value {window} days old"
                notes[f"{metric}_change_{window}d"] = f"{where}, {metric} today against its {base}"
    return notes
