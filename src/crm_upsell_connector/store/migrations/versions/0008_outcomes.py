"""Proposals with their outcomes, and the per-connection salt of the holdout draw (issue 15).

Revision ID: i15_outcomes
Revises: i12_credentials
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i15_outcomes"
down_revision = "i12_credentials"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.Integer()),
        _ts("proposed_at", nullable=False),
        _ts("window_ends_at", nullable=False),
        sa.Column("rule", sa.Text()),
        sa.Column("kind", sa.String(16)),
        sa.Column("product_sku", sa.Text()),
        sa.Column("product_family", sa.Text()),
        sa.Column("segment", sa.String(64)),
        sa.Column("owner_id", sa.String(255)),
        sa.Column("score", sa.Float()),
        sa.Column("uplift", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("not_sent_reason", sa.String(64)),
        sa.Column("task_key", sa.String(64)),
        _ts("task_created_at"),
        _ts("task_done_at"),
        sa.Column("deal_id", sa.String(255)),
        _ts("deal_opened_at"),
        _ts("deal_closed_at"),
        sa.Column("deal_won", sa.Boolean()),
        sa.Column("revenue_home", sa.Float()),
        _ts("checked_at"),
    )
    op.create_index("ix_proposals_account", "proposals", ["connection", "account_id"])
    op.create_index("ix_proposals_proposed", "proposals", ["connection", "proposed_at"])
    op.create_table(
        "experiment_salts",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=False),
        _ts("created_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiment_salts")
    op.drop_index("ix_proposals_proposed", table_name="proposals")
    op.drop_index("ix_proposals_account", table_name="proposals")
    op.drop_table("proposals")
