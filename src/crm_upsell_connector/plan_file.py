"""Saved plans: ``plan --out FILE`` writes one, ``apply FILE`` applies exactly it, or refuses a stale one.

The file is JSON: the plan's writes (field updates with the values the CRM showed, tasks), and for
every account it writes to, the account's modification stamp in the CRM and the product's field
values as the store held them when the plan was made. ``apply FILE`` syncs first, then refuses the
plan when any of those accounts changed in the CRM or the store since (or is gone), when one of its
tasks was already created, or when the outbox still holds writes of an earlier run that the plan
does not replace (they would be sent with it). The file holds CRM data (names, reasons): keep it as
you keep the store.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, select

from crm_upsell_connector.apply import MAX_ATTEMPTS
from crm_upsell_connector.connector import Connector
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.plan import FieldChange, Plan, account_names, owner_names
from crm_upsell_connector.store.schema import accounts, outbox, task_keys

if TYPE_CHECKING:
    from crm_upsell_connector.pipeline import Session

FORMAT = "crm-upsell-plan"
VERSION = 1


def _stamp(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account_state(conn: Connection, connection: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    id_list = sorted(ids)
    for i in range(0, len(id_list), 500):
        for row in conn.execute(
            select(accounts.c.id, accounts.c.updated_at, accounts.c.product_fields).where(
                accounts.c.connection == connection, accounts.c.id.in_(id_list[i : i + 500])
            )
        ):
            state[row.id] = {
                "updated_at": _stamp(_aware(row.updated_at)),
                "product_fields": {k: v for k, v in (row.product_fields or {}).items() if v},
            }
    return state


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def save_plan(conn: Connection, plan: Plan, crm: str, path: Path) -> None:
    """Write ``plan`` with what it was made from to ``path`` (mode 0600, replaced atomically)."""
    targets = {c.account_id for c in plan.changes} | {t.account_id for t in plan.tasks}
    data = {
        "format": FORMAT,
        "version": VERSION,
        "crm": crm,
        **plan.to_json(),
        "seen": _account_state(conn, plan.connection, targets),
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


def load_plan(path: Path, connection: str) -> tuple[Plan, dict[str, dict[str, Any]]]:
    """The plan saved in ``path`` and the account state it was made from; one-line errors."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no plan file at {path}", hint="make one with 'crm-upsell plan --out FILE'"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable plan file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a plan file", hint="make one with 'crm-upsell plan --out FILE'")
    if data.get("version") != VERSION:
        raise ConfigError(
            f"{path}: plan file version {data.get('version')!r} is not supported (expected {VERSION})"
        )
    if data.get("connection") != connection:
        raise ConfigError(
            f"{path} was made for connection {data.get('connection')!r}, not {connection!r}",
            hint="pass --connection NAME, or make a new plan",
        )
    try:
        plan = Plan(
            connection=connection,
            created_at=datetime.fromisoformat(data["created_at"]),
            changes=[
                FieldChange(
                    str(u["account_id"]),
                    str(u.get("account") or ""),
                    {str(k): (None if v is None else str(v)) for k, v in dict(u["before"]).items()},
                    {str(k): str(v) for k, v in dict(u["after"]).items()},
                )
                for u in data["field_updates"]
            ],
            tasks=[TaskDraft.model_validate(t) for t in data["tasks"]],
            skipped={str(k): int(v) for k, v in dict(data.get("skipped") or {}).items()},
            accounts=int(data.get("accounts") or 0),
            first_write=bool(data.get("first_write")),
        )
        seen = {str(k): dict(v) for k, v in dict(data["seen"]).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path} is damaged ({type(exc).__name__}: {exc})", hint="make a new plan"
        ) from None
    return plan, seen


def stale_reasons(conn: Connection, plan: Plan, seen: dict[str, dict[str, Any]]) -> list[str]:
    """Why ``plan`` may no longer be applied as it is (empty: it may)."""
    reasons: list[str] = []
    targets = {c.account_id for c in plan.changes} | {t.account_id for t in plan.tasks}
    now = _account_state(conn, plan.connection, targets)
    gone = sorted(a for a in targets if a not in now)
    changed = sorted(a for a in targets if a in now and now[a] != seen.get(a))
    if gone:
        reasons.append(f"{len(gone)} of its accounts are gone from the CRM (e.g. {gone[0]})")
    if changed:
        reasons.append(
            f"{len(changed)} of its accounts changed in the CRM or the store since (e.g. {changed[0]})"
        )
    keys = [t.key for t in plan.tasks]
    done: set[str] = set()
    for i in range(0, len(keys), 500):
        done.update(
            conn.execute(
                select(task_keys.c.key).where(
                    task_keys.c.connection == plan.connection, task_keys.c.key.in_(keys[i : i + 500])
                )
            ).scalars()
        )
    if done:
        reasons.append(f"{len(done)} of its tasks were already created")
    updated = {c.account_id for c in plan.changes}
    queued = [
        row
        for row in conn.execute(
            select(outbox.c.kind, outbox.c.account_id).where(
                outbox.c.connection == plan.connection,
                outbox.c.status.in_(("pending", "sent"))
                | and_(outbox.c.status == "failed", outbox.c.attempts < MAX_ATTEMPTS),
            )
        )
        if row.kind == "task" or row.account_id not in updated
    ]
    if queued:
        reasons.append(
            f"{len(queued)} write(s) of an earlier run are still queued and would be sent with it "
            "(finish them with 'crm-upsell apply' first)"
        )
    return reasons


async def fresh_saved_plan(session: Session, connector: Connector, path: Path) -> Plan:
    """The plan saved in ``path``, after a sync has shown it is still what the CRM and store hold.

    Raises ``ConfigError`` (one line, nothing written) when the plan is for another connection,
    unreadable, or stale (see :func:`stale_reasons`), or when the sync failed so staleness cannot
    be known.
    """
    plan, seen = load_plan(path, session.name)
    synced = await session.sync(connector)
    if synced.failed:
        raise ConfigError(
            f"cannot tell whether {path} is still current: {', '.join(sorted(synced.failed))} failed to sync; "
            "nothing was written",
            hint="run 'crm-upsell sync' to see why, then apply the plan again",
        )
    with session.engine.connect() as conn:
        reasons = stale_reasons(conn, plan, seen)
        # Shown as `plan` shows it: owners and accounts by name (the file keeps the CRM ids).
        plan.owner_names = owner_names(conn, session.name)
        plan.account_names = {
            **{c.account_id: c.account_name for c in plan.changes if c.account_name},
            **account_names(conn, session.name, [t.account_id for t in plan.tasks]),
        }
    if reasons:
        raise ConfigError(
            f"the plan in {path} is stale: {'; '.join(reasons)}; nothing was written",
            hint="make a new one with 'crm-upsell plan --out FILE' and review it",
        )
    return plan
