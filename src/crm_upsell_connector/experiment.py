"""The holdout draw: which accounts form the control group that measures the uplift of proposals.

An account is held out when ``sha256(salt ":" account id)``, read as a number in [0, 1), is below
``[experiment] holdout_share``. The salt is drawn once per connection and kept in the store, so a
rerun, a second worker or a restarted host assigns every account alike, and two connections (or two
products installed side by side) draw independent groups. Raising the share only adds accounts to
the control group; lowering it only returns some.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from crm_upsell_connector.store.schema import experiment_salts

_SCALE = float(2**64)


def holdout_salt(engine: Engine, connection: str) -> str:
    """The connection's salt, drawn (and stored) the first time it is asked for."""
    query = select(experiment_salts.c.salt).where(experiment_salts.c.connection == connection)
    with engine.begin() as conn:
        salt = conn.execute(query).scalar_one_or_none()
        if salt is not None:
            return str(salt)
        # Two workers starting together: the first insert wins, both then read the same salt.
        row = {"connection": connection, "salt": secrets.token_hex(16), "created_at": datetime.now(UTC)}
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(insert(experiment_salts).values(row).on_conflict_do_nothing())
        return str(conn.execute(query).scalar_one())


def draw(account_id: str, salt: str) -> float:
    """The account's fixed position in [0, 1) for this salt."""
    digest = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def holdout(salt: str, share: float) -> Callable[[str], bool]:
    """``held_out(account_id)``: True for the accounts in the control group."""

    def held_out(account_id: str) -> bool:
        return draw(account_id, salt) < share

    return held_out
