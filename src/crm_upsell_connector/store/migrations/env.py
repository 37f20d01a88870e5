"""Alembic environment: runs on the connection the product hands over (see store/engine.py)."""

from __future__ import annotations

from typing import Any

from alembic import context

from crm_upsell_connector.jobs.schema import is_engine_object
from crm_upsell_connector.store.schema import metadata


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    """procrastinate's tables are its own (jobs/schema.py): never compared with our models."""
    return not is_engine_object(name)


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_name=_ours)
with context.begin_transaction():
    context.run_migrations()
