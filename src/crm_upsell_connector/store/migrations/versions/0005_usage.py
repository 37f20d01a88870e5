"""Usage values read from ``[[usage.sources]]``, with their history.

Revision ID: i18_usage
Revises: i14_run_history
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i18_usage"
down_revision = "i14_run_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_values",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection", "source", "key", "observed_on"),
    )


def downgrade() -> None:
    op.drop_table("usage_values")
