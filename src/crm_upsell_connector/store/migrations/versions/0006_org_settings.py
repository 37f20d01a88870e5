"""The org's home currency per connection, as the CRM reports it at sync.

Revision ID: i13_org_settings
Revises: i18_usage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i13_org_settings"
down_revision = "i18_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_settings",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("home_currency", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connection"),
    )


def downgrade() -> None:
    op.drop_table("org_settings")
