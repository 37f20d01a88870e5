"""The org's home (corporate) currency per connection: read from the CRM at sync, kept in the store.

Every amount that reaches a feature, a reason or an uplift is in this currency (deals carry their
home amount, ``Deal.amount_home``). Where it comes from, first match wins:

1. ``[tasks] currency`` in the configuration: an optional override;
2. what the connector's ``Connector.home_currency()`` returned at the last sync (``org_settings``);
3. the one currency every stored deal is in (a single-currency org whose CRM does not say);
4. otherwise unknown (``None``): reasons then show amounts without a code.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_upsell_connector.errors import AuthError, ConnectorError
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.repo import upsert

if TYPE_CHECKING:
    from crm_upsell_connector.connector import Connector

log = logging.getLogger(__name__)

_ISO_4217 = re.compile(r"^[A-Z]{3}$")


def normalize_code(raw: str | None) -> str | None:
    """An ISO 4217 code in upper case, or ``None`` for anything that is not one."""
    if raw is None:
        return None
    code = raw.strip().upper()
    return code if _ISO_4217.match(code) else None


def stored_home_currency(conn: sa.Connection, connection: str) -> str | None:
    """The home currency the CRM reported at the last sync, if any."""
    t = schema.org_settings
    row = conn.execute(sa.select(t.c.home_currency).where(t.c.connection == connection)).first()
    return None if row is None else normalize_code(row[0])


def save_home_currency(conn: sa.Connection, connection: str, code: str | None, now: datetime) -> None:
    upsert(
        conn,
        schema.org_settings,
        [{"connection": connection, "home_currency": normalize_code(code), "updated_at": now}],
    )


def resolve_home_currency(conn: sa.Connection, connection: str, override: str | None = None) -> str | None:
    """The home currency to use now (see the module's order); ``None`` when it cannot be known."""
    chosen = normalize_code(override) or stored_home_currency(conn, connection)
    if chosen is not None:
        return chosen
    d = schema.deals
    codes = conn.execute(
        sa.select(sa.func.upper(d.c.currency))
        .where(d.c.connection == connection, d.c.currency.is_not(None))
        .distinct()
        .limit(2)
    ).all()
    return normalize_code(codes[0][0]) if len(codes) == 1 else None


async def refresh_home_currency(
    engine: sa.Engine, connector: Connector, connection: str, now: datetime
) -> str | None:
    """Ask the CRM for the org's home currency and keep it; the stored one stays if the CRM fails.

    Authentication failures are not hidden (the sync would fail on them anyway); other API errors
    are logged as a warning, since the sync itself can still go on.
    """
    try:
        raw = await connector.home_currency()
    except AuthError:
        raise
    except ConnectorError as exc:
        log.warning("could not read the org's home currency: %s", exc)
        return None
    code = normalize_code(raw)
    if raw is not None and code is None:
        log.warning("the CRM reported %r as its home currency, which is not an ISO 4217 code", raw)
    if code is not None:
        with engine.begin() as conn:
            save_home_currency(conn, connection, code, now)
    return code
