"""The store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Every table is keyed by ``connection`` first, so several CRM connections live apart in one store.
Alembic migrations under ``store/migrations`` create exactly this schema (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite keeps no zone: store UTC, read UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

ID = String(255)
CONN = String(64)


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


accounts = Table(
    "accounts",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("owner_id", ID),
    Column("domain", Text),
    Column("industry", Text),
    Column("lifecycle_stage", Text),
    _ts("created_at"),
    _ts("updated_at", nullable=False),
    Column("fields", JSON, nullable=False),
    Column("product_fields", JSON, nullable=False),
    Column("extra", JSON, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("account_id", ID),
    Column("email", Text),
    Column("name", Text, nullable=False, default=""),
    Column("lifecycle_stage", Text),
    _ts("created_at"),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_contacts_account", "connection", "account_id"),
)

deals = Table(
    "deals",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("account_id", ID),
    Column("owner_id", ID),
    Column("name", Text, nullable=False, default=""),
    Column("stage", Text),
    Column("is_closed", Boolean, nullable=False, default=False),
    Column("is_won", Boolean, nullable=False, default=False),
    Column("amount", Float),
    Column("currency", String(8)),
    Column("amount_home", Float),
    _ts("close_date"),
    _ts("created_at"),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_deals_account", "connection", "account_id"),
)

line_items = Table(
    "line_items",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("deal_id", ID),
    Column("account_id", ID),
    Column("product_id", ID),
    Column("sku", Text),
    Column("name", Text, nullable=False, default=""),
    Column("quantity", Float, nullable=False, default=1.0),
    Column("unit_price", Float),
    Column("amount", Float),
    Column("amount_home", Float),
    Column("billing_period", Text),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_line_items_deal", "connection", "deal_id"),
)

products = Table(
    "products",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("sku", Text),
    Column("name", Text, nullable=False, default=""),
    Column("unit_price", Float),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
)

owners = Table(
    "owners",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("email", Text),
    Column("name", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
)

activities = Table(
    "activities",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("account_id", ID),
    Column("contact_id", ID),
    Column("owner_id", ID),
    _ts("occurred_at"),
    Column("direction", String(16)),
    Column("outcome", Text),
    Column("subject", Text, nullable=False, default=""),
    Column("body", Text, nullable=False, default=""),
    Column("status", String(32)),
    Column("upsell_key", String(64)),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_activities_account", "connection", "account_id", "occurred_at"),
    Index("ix_activities_upsell_key", "connection", "upsell_key"),
)

# Marketing engagement per contact as the CRM keeps it (``id`` is the contact's id): HubSpot's
# lifetime counters and last open/click/visit dates, every CRM's e-mail opt-out.
contact_engagement = Table(
    "contact_engagement",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("email_opens", Float),
    Column("email_clicks", Float),
    Column("email_bounces", Float),
    _ts("last_open_at"),
    _ts("last_click_at"),
    Column("site_visits", Float),
    _ts("last_visit_at"),
    Column("unsubscribed", Boolean),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
)

# The lifetime counters each time a sync saw them change (stamped with the contact's modification
# time): windowed opens and clicks are the rise since the snapshot before the window's start.
engagement_snapshots = Table(
    "engagement_snapshots",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("contact_id", ID, primary_key=True),
    Column("taken_at", UTCDateTime(), primary_key=True),
    Column("email_opens", Float),
    Column("email_clicks", Float),
    Column("site_visits", Float),
)

# Campaign membership of contacts (Salesforce CampaignMember, Zoho campaign members).
campaign_members = Table(
    "campaign_members",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("contact_id", ID),
    Column("campaign_id", ID),
    Column("campaign_name", Text, nullable=False, default=""),
    Column("status", Text),
    Column("responded", Boolean, nullable=False, default=False),
    _ts("responded_at"),
    _ts("created_at"),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_campaign_members_contact", "connection", "contact_id"),
)

STREAM_TABLES = {
    "accounts": accounts,
    "contacts": contacts,
    "deals": deals,
    "line_items": line_items,
    "products": products,
    "owners": owners,
    "activities": activities,
    "contact_engagement": contact_engagement,
    "campaign_members": campaign_members,
}

# One row per connector stream: where an incremental read starts and where a full read resumes.
sync_state = Table(
    "sync_state",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("stream", String(64), primary_key=True),
    _ts("cursor"),
    Column("resume", Text),
    # Ids stored with modification stamp == cursor: the inclusive re-read may skip them.
    Column("boundary_ids", JSON),
    _ts("full_started_at"),
    _ts("deleted_checked_at"),
    Column("records", BigInteger, nullable=False, default=0),
    _ts("updated_at"),
)

# One row per connection: what the CRM says about the org as a whole (its home currency), read at sync.
org_settings = Table(
    "org_settings",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("home_currency", String(8)),
    _ts("updated_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection", CONN, nullable=False),
    Column("command", String(32), nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    Column("status", String(16), nullable=False),  # running, ok, partial, failed, held, ...
    Column("summary", JSON, nullable=False),
    Column("trigger", String(16)),  # manual, schedule, worker (null: recorded before it was kept)
    Column("parent_id", Integer),  # the sync and apply steps of a pipeline run point at that run
    Index("ix_runs_connection", "connection", "started_at"),
)

_RECOMMENDATION_COLUMNS = (
    ("score", Float),
    ("segment", String(64)),
    ("tags", JSON),
    ("kind", String(16)),  # upgrade, cross_sell, retention or null
    ("product_sku", Text),
    ("uplift", Float),
    ("reason", Text),
    ("rule", Text),
    ("blocked_by", Text),
    ("factors", JSON),
    ("facts", JSON),
)

# The current recommendation per account.
recommendations = Table(
    "recommendations",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("account_id", ID, primary_key=True),
    Column("run_id", Integer),
    _ts("computed_at", nullable=False),
    *(Column(name, type_) for name, type_ in _RECOMMENDATION_COLUMNS),
)

# Every recommendation ever made, for the rule-performance report.
recommendation_history = Table(
    "recommendation_history",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("connection", CONN, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("run_id", Integer),
    _ts("computed_at", nullable=False),
    *(Column(name, type_) for name, type_ in _RECOMMENDATION_COLUMNS),
    Index("ix_rec_history_account", "connection", "account_id"),
)

# Every write is recorded here before it is sent and confirmed after (see apply.py).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection", CONN, nullable=False),
    Column("run_id", Integer),
    Column("kind", String(16), nullable=False),  # field_update, task
    Column("ref", String(255), nullable=False),  # account id, or the task key
    Column("account_id", ID, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sent, done, failed, superseded, gone
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("crm_id", ID),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Index("ix_outbox_status", "connection", "status"),
    Index("ix_outbox_ref", "connection", "kind", "ref"),
)

# Task keys are unique per connection (primary key): the same proposal can never be queued twice.
task_keys = Table(
    "task_keys",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("owner_id", ID),
    Column("product_sku", Text),
    _ts("created_at", nullable=False),
)

# Usage read from product databases, warehouses and files (``[[usage.sources]]``): one row per source
# key (a CRM id, a normalised domain or an external id) and day, written only when the values
# changed, so a value holds until the next row of its key (the history behind the trend features).
usage_values = Table(
    "usage_values",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("observed_on", Date, primary_key=True),
    Column("metrics", JSON, nullable=False),
    _ts("read_at", nullable=False),
)

# ---- the scheduler (``crm-upsell schedule``) --------------------------------------------------
# PostgreSQL stores also hold procrastinate's job tables (``procrastinate_*``), installed by the
# migrations and defined by procrastinate itself (crm_upsell_connector.jobs.schema), not here.

# APScheduler's SQLAlchemyJobStore table, in the shape that job store defines (it creates the table
# only when missing). Created by our migrations so that workers starting together never race to
# create it. One row per scheduled connection: its trigger and next fire time.
scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

# Each running worker and when it last reported in (``crm-upsell status`` lists them).
workers = Table(
    "workers",
    metadata,
    Column("id", String(255), primary_key=True),  # host:pid:start
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    _ts("started_at", nullable=False),
    _ts("seen_at", nullable=False),
    _ts("stopped_at"),
    Column("connections", JSON, nullable=False),
)

# Credentials the CRM hands back and every worker must share (rotated refresh tokens), encrypted
# with the operator's CRM_UPSELL_CREDENTIAL_KEY; never a plain secret (see credentials.py).
credentials = Table(
    "credentials",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("source", String(64), nullable=False),  # fingerprint of the configured secret
    _ts("updated_at", nullable=False),
)

# ---- outcomes and the holdout (``crm-upsell outcomes``, ``crm-upsell report``) -----------------

# One row per proposal the product made: what it proposed and the account's rule, segment, owner
# and score at that time (so history stays as it was when the rules change), how it went out
# (``task``; ``not_sent`` held back by pacing; ``held_out`` in the control group) and, refreshed
# after each sync, what happened: task created and done, a deal opened for the product or its
# family within the attribution window, won or lost, and its amount in the home currency.
proposals = Table(
    "proposals",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("run_id", Integer),
    _ts("proposed_at", nullable=False),
    _ts("window_ends_at", nullable=False),
    Column("rule", Text),
    Column("kind", String(16)),
    Column("product_sku", Text),
    Column("product_family", Text),
    Column("segment", String(64)),
    Column("owner_id", ID),
    Column("score", Float),
    Column("uplift", Float),
    Column("status", String(16), nullable=False),  # task, not_sent, held_out
    Column("not_sent_reason", String(64)),
    Column("task_key", String(64)),
    _ts("task_created_at"),
    _ts("task_done_at"),
    Column("deal_id", ID),
    _ts("deal_opened_at"),
    _ts("deal_closed_at"),
    Column("deal_won", Boolean),
    Column("revenue_home", Float),
    _ts("checked_at"),
    Index("ix_proposals_account", "connection", "account_id"),
    Index("ix_proposals_proposed", "connection", "proposed_at"),
)

# The per-connection salt of the holdout draw: every worker sharing the store assigns alike.
experiment_salts = Table(
    "experiment_salts",
    metadata,
    Column("connection", CONN, primary_key=True),
    Column("salt", String(64), nullable=False),
    _ts("created_at", nullable=False),
)
