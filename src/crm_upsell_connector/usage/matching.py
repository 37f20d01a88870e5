"""Matching source keys to the CRM accounts in the store: by CRM id, normalised domain or a mapped field.

A Salesforce account matches by its 18-character id and by its 15-character form (keys.id_aliases).
A domain (or external id) that several accounts share is ambiguous: it is reported and matches
none of them, never a guess. The match report counts what ``check``, ``sync`` and ``usage
preview`` show: keys matched, rows (keys) unmatched, ambiguous keys, accounts without usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.store import schema
from crm_upsell_connector.usage.config import UsageSource
from crm_upsell_connector.usage.keys import id_aliases, source_key

SAMPLE = 10


@dataclass
class AccountIndex:
    """Key -> account id for one source's match mode; ambiguous keys with how many accounts share them."""

    by_key: dict[str, str]
    ambiguous: dict[str, int]
    accounts: int


def account_index(conn: sa.Connection, connection: str, source: UsageSource) -> AccountIndex:
    """Every account of ``connection`` under the key ``source`` matches on."""
    a = schema.accounts
    if source.match == "id":
        column: sa.ColumnElement[Any] = a.c.id
    elif source.match == "domain":
        column = a.c.domain
    else:
        assert source.crm_field is not None
        column = a.c.fields[source.crm_field].as_string()
    by_key: dict[str, str] = {}
    shared: dict[str, int] = {}
    accounts = 0
    for account_id, raw in conn.execute(sa.select(a.c.id, column).where(a.c.connection == connection)):
        accounts += 1
        key = source_key(raw, source.match)
        if key is None:
            continue
        keys = (key, *id_aliases(key)) if source.match == "id" else (key,)
        for each in keys:
            if each in shared:
                shared[each] += 1
            elif each in by_key:
                del by_key[each]
                shared[each] = 2
            else:
                by_key[each] = account_id
    return AccountIndex(by_key, shared, accounts)


@dataclass
class MatchReport:
    """How one source's keys met the CRM accounts."""

    source: str
    keys: int = 0
    matched: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    accounts: int = 0
    accounts_without_usage: int = 0
    unmatched_sample: list[str] = field(default_factory=list)
    ambiguous_sample: list[str] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        return self.matched / self.keys if self.keys else 0.0

    def line(self) -> str:
        """One line for ``check``/``sync``: what matched and what did not."""
        text = (
            f"usage {self.source}: {self.matched:,} of {self.keys:,} keys matched ({self.match_rate:.0%}), "
            f"{self.unmatched:,} unmatched"
        )
        if self.ambiguous:
            text += f", {self.ambiguous:,} ambiguous (shared by several accounts)"
        text += f"; {self.accounts_without_usage:,} of {self.accounts:,} accounts without usage"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "ambiguous": self.ambiguous,
            "accounts": self.accounts,
            "accounts_without_usage": self.accounts_without_usage,
        }


def match_keys(source: UsageSource, index: AccountIndex, keys: Iterable[str]) -> MatchReport:
    """Count ``keys`` (each once) against ``index``."""
    report = MatchReport(source.name, accounts=index.accounts)
    used: set[str] = set()
    for key in keys:
        report.keys += 1
        account = index.by_key.get(key)
        if account is not None:
            report.matched += 1
            used.add(account)
        elif key in index.ambiguous:
            report.ambiguous += 1
            if len(report.ambiguous_sample) < SAMPLE:
                report.ambiguous_sample.append(f"{key} ({index.ambiguous[key]} accounts)")
        else:
            report.unmatched += 1
            if len(report.unmatched_sample) < SAMPLE:
                report.unmatched_sample.append(key)
    report.accounts_without_usage = index.accounts - len(used)
    return report


def stored_match_report(conn: sa.Connection, connection: str, source: UsageSource) -> MatchReport:
    """The match report of what the store holds for ``source`` (after a sync)."""
    u = schema.usage_values
    keys = conn.execute(
        sa.select(u.c.key)
        .where(u.c.connection == connection, u.c.source == source.name)
        .group_by(u.c.key)
        .order_by(u.c.key)
    ).scalars()
    return match_keys(source, account_index(conn, connection, source), keys)
