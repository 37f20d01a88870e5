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
    Column("product_id", ID),
    Column("sku", Text),
    Column("name", Text, nullable=False, default=""),
    Column("quantity", Float, nullable=False, default=1.0),
    Column("unit_price", Float),
    Column("amount", Float),
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
    Column("status", String(32)),
    Column("upsell_key", String(64)),
    _ts("updated_at", nullable=False),
    Column("extra", JSON, nullable=False),
    Index("ix_activities_account", "connection", "account_id", "occurred_at"),
    Index("ix_activities_upsell_key", "connection", "upsell_key"),
)

STREAM_TABLES = {
    "accounts": accounts,
    "contacts": contacts,
    "deals": deals,
    "line_items": line_items,
    "products": products,
    "owners": owners,
    "activities": activities,
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

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection", CONN, nullable=False),
    Column("command", String(32), nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    Column("status", String(16), nullable=False),  # running, ok, partial, failed
    Column("summary", JSON, nullable=False),
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
    Column("status", String(16), nullable=False),  # pending, sent, done, failed
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
