"""Line items that name their account directly (order and invoice lines, which have no deal).

Revision ID: i11b_line_item_accounts
Revises: i17_marketing_engagement
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i11b_line_item_accounts"
down_revision = "i17_marketing_engagement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("line_items") as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("line_items") as batch_op:
        batch_op.drop_column("account_id")
