"""What a usage source holds before it is synced (columns, rows, match rate), and after (who is left out).

``preview_source`` reads the whole source in chunks without writing anything and matches its keys
against the accounts already in the store; ``unmatched_report`` lists, from the store, the keys that
matched no account and the accounts that no key matched. Both serve ``crm-upsell usage`` and
``check``, and are what ``discover`` can call to show a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema
from crm_upsell_connector.usage.config import UsageSource
from crm_upsell_connector.usage.keys import source_key
from crm_upsell_connector.usage.matching import MatchReport, account_index, match_keys
from crm_upsell_connector.usage.readers import Row, SourceReader


@dataclass
class SourcePreview:
    """A source as read now, matched against the accounts of one connection in the store."""

    source: UsageSource
    columns: list[str]
    rows: int
    without_key: int
    matches: MatchReport
    sample: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "reads": self.source.describe(),
            "columns": self.columns,
            "rows": self.rows,
            "rows_without_key": self.without_key,
            "match_by": self.source.match,
            "match_rate": round(self.matches.match_rate, 4),
            **self.matches.to_json(),
            "unmatched_sample": self.matches.unmatched_sample,
            "ambiguous_sample": self.matches.ambiguous_sample,
            "sample": [{k: _plain(v) for k, v in row.items()} for row in self.sample],
        }


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def preview_source(
    store: Engine, connection: str, source: UsageSource, secrets: SecretResolver, *, sample: int = 5
) -> SourcePreview:
    """Read ``source`` end to end (in chunks; nothing is written) and match its keys.

    Raises ``UsageSourceError``/``ConfigError`` naming the source when it cannot be read.
    """
    reader = SourceReader(source, secrets)
    columns = reader.all_columns()
    keys: set[str] = set()
    rows = without_key = 0
    first: list[Row] = []
    for chunk in reader.chunks(None):
        if len(first) < sample:
            first.extend(chunk[: sample - len(first)])
        for row in chunk:
            rows += 1
            key = source_key(row.get(source.key), source.match)
            if key is None:
                without_key += 1
            else:
                keys.add(key)
    with store.connect() as conn:
        index = account_index(conn, connection, source)
    return SourcePreview(source, columns, rows, without_key, match_keys(source, index, sorted(keys)), first)


@dataclass
class LeftOut:
    """From the store: keys that matched no account, accounts that no key matched (first ``limit``)."""

    unmatched_keys: list[str]
    ambiguous_keys: list[str]
    accounts_without_usage: list[tuple[str, str]]  # (id, name)
    matches: MatchReport


def left_out(conn: sa.Connection, connection: str, source: UsageSource, *, limit: int = 20) -> LeftOut:
    u, a = schema.usage_values, schema.accounts
    index = account_index(conn, connection, source)
    keys = list(
        conn.execute(
            sa.select(u.c.key)
            .where(u.c.connection == connection, u.c.source == source.name)
            .group_by(u.c.key)
            .order_by(u.c.key)
        ).scalars()
    )
    matched = {index.by_key[k] for k in keys if k in index.by_key}
    unmatched = [k for k in keys if k not in index.by_key and k not in index.ambiguous][:limit]
    ambiguous = [f"{k} ({index.ambiguous[k]} accounts)" for k in keys if k in index.ambiguous][:limit]
    without: list[tuple[str, str]] = []
    for account_id, name in conn.execute(
        sa.select(a.c.id, a.c.name).where(a.c.connection == connection).order_by(a.c.id)
    ):
        if account_id not in matched:
            without.append((account_id, name or ""))
            if len(without) >= limit:
                break
    return LeftOut(unmatched, ambiguous, without, match_keys(source, index, keys))
