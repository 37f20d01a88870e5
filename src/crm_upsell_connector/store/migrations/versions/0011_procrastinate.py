"""Scale-out on procrastinate: its job tables in PostgreSQL stores; the tick claim table goes.

On PostgreSQL, procrastinate (the job queue of ``crm-upsell schedule`` workers) gets its schema, at
the version ``crm_upsell_connector.jobs.schema.SCHEMA_VERSION``. ``schedule_ticks``, where workers
used to claim ticks, is dropped on both backends: procrastinate's periodic defers do that now.

Revision ID: i19_procrastinate
Revises: i11b_line_item_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i19_procrastinate"
down_revision = "i11b_line_item_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("schedule_ticks")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from crm_upsell_connector.jobs.schema import install

        install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from crm_upsell_connector.jobs.schema import uninstall

        uninstall(bind)
    op.create_table(
        "schedule_ticks",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("tick", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection", "tick"),
    )
