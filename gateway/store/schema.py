"""The store's tables (SQLAlchemy Core), as of the newest migration.

The migrations in ``gateway/store/migrations/versions`` create and change the
real database; this module describes the result so queries can be written
against it. A test compares the two on SQLite and PostgreSQL, so they cannot
drift apart.

Times are stored in UTC (:class:`UtcDateTime`): PostgreSQL ``timestamptz``, and
SQLite text that sorts in time order. Lists of addresses are newline-joined text
so a substring search works the same on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends; refuses naive datetimes.

    A naive datetime is almost always ``datetime.now()`` in local time by mistake;
    storing it would silently shift every time filter, so it is an error.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (and to naive UTC wall time on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store UTC wall time, which also sorts as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def python_type(self) -> type[Any]:
        """The Python type of values."""
        return datetime


decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("queue_id", sa.String(64), nullable=False, index=True),
    sa.Column("decided_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("received_at", UtcDateTime(), nullable=True),
    sa.Column("account", sa.String(255), nullable=True, index=True),
    sa.Column("peer", sa.String(64), nullable=False, server_default=""),
    sa.Column("helo", sa.Text(), nullable=False, server_default=""),
    sa.Column("tls", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("mail_from", sa.Text(), nullable=False, server_default=""),
    sa.Column("mail_options", sa.Text(), nullable=False, server_default=""),
    sa.Column("recipients", sa.Text(), nullable=False),
    sa.Column("profile", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False, server_default="", index=True),
    sa.Column("subject", sa.Text(), nullable=False, server_default=""),
    sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("durations", sa.JSON(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False, server_default=""),
    sa.Column("refused", sa.JSON(), nullable=False),
    sa.Column("signals", sa.JSON(), nullable=False),
    sa.Column("order_ids", sa.JSON(), nullable=False),
    sa.Column("buyer", sa.Text(), nullable=True),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "decision_id", sa.BigInteger(), sa.ForeignKey("decisions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False, index=True),
    sa.Column("category", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("language", sa.String(16), nullable=True, index=True),
    sa.Column("evidence", sa.Text(), nullable=False, server_default=""),
    sa.Column("location", sa.Text(), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("monitor", sa.Boolean(), nullable=False, server_default=sa.false()),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("decision_id", sa.BigInteger(), sa.ForeignKey("decisions.id"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("status_at", UtcDateTime(), nullable=True),
    sa.Column("status_by", sa.String(128), nullable=False, server_default=""),
    sa.Column("status_reason", sa.Text(), nullable=False, server_default=""),
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("claimed_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
    sa.Column("last_error_at", UtcDateTime(), nullable=True),
    sa.Column("upstream_reply", sa.Text(), nullable=False, server_default=""),
    sa.Column("refused", sa.JSON(), nullable=True),
    sa.Column("notice_status", sa.String(16), nullable=False, server_default=""),
    sa.Column("notice_detail", sa.Text(), nullable=False, server_default=""),
    # Added by revision 0002 (rescan with the policy of the day).
    sa.Column("rescanned_at", UtcDateTime(), nullable=True),
    sa.Column("rescanned_by", sa.String(128), nullable=False, server_default=""),
    sa.Column("rescan_verdict", sa.JSON(), nullable=True),
)

# Raw bytes live apart so listing never reads them and a delete frees them at once.
quarantine_messages = sa.Table(
    "quarantine_messages",
    metadata,
    sa.Column("quarantine_id", sa.String(64), sa.ForeignKey("quarantine.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("raw", sa.LargeBinary(), nullable=False),
)

state_events = sa.Table(
    "state_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("queue_id", sa.String(64), nullable=False, server_default=""),
    # Recording the same event twice (a retried release) must not count twice.
    sa.UniqueConstraint("kind", "key", "queue_id"),
    sa.Index(None, "kind", "key", "at"),
    # Added by revision 0003: the retention purge selects by age alone.
    sa.Index(None, "at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False, index=True),
    sa.Column("target", sa.String(255), nullable=False, server_default="", index=True),
    sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False, server_default=""),
)

# Added by revision 0002: console users (issue 6).
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_login_at", UtcDateTime(), nullable=True),
    sa.Column("password_changed_at", UtcDateTime(), nullable=True),
)
