"""Decision log with findings, quarantine, per-order state, audit log.

Revision ID: 0001
Revises:
Create Date: 2025-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables the SMTP pipeline writes."""
    op.create_table(
        "decisions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("decided_at", _Time, nullable=False),
        sa.Column("received_at", _Time, nullable=True),
        sa.Column("account", sa.String(255), nullable=True),
        sa.Column("peer", sa.String(64), nullable=False, server_default=""),
        sa.Column("helo", sa.Text(), nullable=False, server_default=""),
        sa.Column("tls", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("mail_from", sa.Text(), nullable=False, server_default=""),
        sa.Column("mail_options", sa.Text(), nullable=False, server_default=""),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False, server_default=""),
        sa.Column("subject", sa.Text(), nullable=False, server_default=""),
        sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("durations", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.Column("refused", sa.JSON(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        sa.Column("buyer", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    for column in ("queue_id", "decided_at", "account", "profile", "action", "outcome"):
        op.create_index(f"ix_decisions_{column}", "decisions", [column])

    op.create_table(
        "findings",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False, server_default=""),
        sa.Column("location", sa.Text(), nullable=False, server_default=""),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("monitor", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name="fk_findings_decision_id_decisions", ondelete="CASCADE"
        ),
    )
    for column in ("decision_id", "rule", "category", "language"):
        op.create_index(f"ix_findings_{column}", "findings", [column])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at", _Time, nullable=True),
        sa.Column("status_by", sa.String(128), nullable=False, server_default=""),
        sa.Column("status_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("claimed_until", _Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("last_error_at", _Time, nullable=True),
        sa.Column("upstream_reply", sa.Text(), nullable=False, server_default=""),
        sa.Column("refused", sa.JSON(), nullable=True),
        sa.Column("notice_status", sa.String(16), nullable=False, server_default=""),
        sa.Column("notice_detail", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name="fk_quarantine_decision_id_decisions"),
    )
    for column in ("decision_id", "created_at", "status"):
        op.create_index(f"ix_quarantine_{column}", "quarantine", [column])

    op.create_table(
        "quarantine_messages",
        sa.Column("quarantine_id", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("quarantine_id", name="pk_quarantine_messages"),
        sa.ForeignKeyConstraint(
            ["quarantine_id"],
            ["quarantine.id"],
            name="fk_quarantine_messages_quarantine_id_quarantine",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "state_events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("at", _Time, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_state_events"),
        sa.UniqueConstraint("kind", "key", "queue_id", name="uq_state_events_kind_key_queue_id"),
    )
    op.create_index("ix_state_events_kind_key_at", "state_events", ["kind", "key", "at"])

    op.create_table(
        "audit_log",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("at", _Time, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255), nullable=False, server_default=""),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    for column in ("at", "actor", "action", "target"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])


def downgrade() -> None:
    """Drop everything (only for development: the data goes with it)."""
    for table in ("audit_log", "state_events", "quarantine_messages", "quarantine", "findings", "decisions"):
        op.drop_table(table)
