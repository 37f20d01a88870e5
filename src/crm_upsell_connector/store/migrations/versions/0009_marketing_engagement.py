"""Marketing engagement: per-contact engagement, snapshots of lifetime counters, campaign members.

Revision ID: i17_marketing_engagement
Revises: i15_outcomes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i17_marketing_engagement"
down_revision = "i15_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_engagement",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("email_opens", sa.Float()),
        sa.Column("email_clicks", sa.Float()),
        sa.Column("email_bounces", sa.Float()),
        sa.Column("last_open_at", sa.DateTime(timezone=True)),
        sa.Column("last_click_at", sa.DateTime(timezone=True)),
        sa.Column("site_visits", sa.Float()),
        sa.Column("last_visit_at", sa.DateTime(timezone=True)),
        sa.Column("unsubscribed", sa.Boolean()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
    )
    op.create_table(
        "engagement_snapshots",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("contact_id", sa.String(255), primary_key=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("email_opens", sa.Float()),
        sa.Column("email_clicks", sa.Float()),
        sa.Column("site_visits", sa.Float()),
    )
    op.create_table(
        "campaign_members",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("contact_id", sa.String(255)),
        sa.Column("campaign_id", sa.String(255)),
        sa.Column("campaign_name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text()),
        sa.Column("responded", sa.Boolean(), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
    )
    op.create_index("ix_campaign_members_contact", "campaign_members", ["connection", "contact_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_members_contact", table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_table("engagement_snapshots")
    op.drop_table("contact_engagement")
