"""Home-currency amounts on deals and line items; whole plain-text bodies on activities.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch_op:
        batch_op.add_column(sa.Column("amount_home", sa.Float(), nullable=True))
    with op.batch_alter_table("line_items") as batch_op:
        batch_op.add_column(sa.Column("amount_home", sa.Float(), nullable=True))
    with op.batch_alter_table("activities") as batch_op:
        # Rows synced before this revision have no body until their next change; "" keeps them valid.
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("activities") as batch_op:
        batch_op.drop_column("body")
    with op.batch_alter_table("line_items") as batch_op:
        batch_op.drop_column("amount_home")
    with op.batch_alter_table("deals") as batch_op:
        batch_op.drop_column("amount_home")
