"""The product's own tasks as the CRM and this store know them: the pacing guardrails' inputs.

The owner's weekly cap (``[guardrails] max_new_tasks_per_owner_per_week``) must hold whatever
store planned the tasks: a fresh store, a second store pointed at the same CRM, or a store restored
after data loss only has its own ``task_keys``, while the CRM shows every task the product made
(its hidden task-key field, synced into ``activities.upsell_key``). Both are counted, each task
once (by its key). The same holds for the open tasks on an account (``features.compute``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa

from crm_upsell_connector.features.values import aware
from crm_upsell_connector.models import ActivityKind
from crm_upsell_connector.store import schema

# Outbox statuses of a task on its way to the CRM (``store.schema.outbox``): queued, written but not
# confirmed, or failed and to be retried. Such a task is open as far as pacing goes.
QUEUED_TASK_STATUSES = ("pending", "sent", "failed")


def crm_task_created_at(occurred: datetime | None, updated: datetime | None) -> datetime | None:
    """The best creation time the CRM gives back for a task, for every connector.

    A task's own stamp is its due date (HubSpot ``hs_timestamp``, Salesforce ``ActivityDate``, Zoho
    ``Due_Date``), which lies after its creation; the earlier of it and the last modification is
    the closest to its creation (never later). ``None`` when the CRM gave neither.
    """
    stamps = [t for t in (aware(occurred), aware(updated)) if t is not None]
    return min(stamps) if stamps else None


def owner_tasks_since(conn: sa.Connection, connection: str, since: datetime) -> dict[str, int]:
    """Owner id -> number of the product's tasks created at or after ``since`` (any status).

    A task counts when this store queued it (``task_keys.created_at``) or when the CRM shows it
    (an ``activities`` row of kind task with an ``upsell_key``) created since then; a key in both
    counts once, for the owner the CRM now gives it (the store's owner where the CRM has none).
    Tasks without an owner are left out (the cap is per owner).
    """
    since = aware(since) or since
    owner_of: dict[str, str | None] = {}
    tk = schema.task_keys
    for key, owner in conn.execute(
        sa.select(tk.c.key, tk.c.owner_id).where(tk.c.connection == connection, tk.c.created_at >= since)
    ):
        owner_of[key] = owner
    act = schema.activities
    query = sa.select(act.c.upsell_key, act.c.owner_id, act.c.occurred_at, act.c.updated_at).where(
        act.c.connection == connection,
        act.c.kind == ActivityKind.TASK.value,
        act.c.upsell_key > "",
        # A task made since then was last changed since then too: older ones are left in the store.
        act.c.updated_at >= since,
    )
    for key, owner, occurred, updated in conn.execute(query):
        created = crm_task_created_at(occurred, updated)
        if key in owner_of:
            owner_of[key] = owner or owner_of[key]
        elif created is not None and created >= since:
            owner_of[key] = owner
    return dict(Counter(owner for owner in owner_of.values() if owner))
