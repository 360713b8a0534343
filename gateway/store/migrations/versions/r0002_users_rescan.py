"""Console users (issue 6) and the latest rescan of a held message.

Revision ID: 0002
Revises: 0001
Create Date: 2025-05-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the users table and the rescan columns of the quarantine."""
    op.create_table(
        "users",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("last_login_at", _Time, nullable=True),
        sa.Column("password_changed_at", _Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("rescanned_at", _Time, nullable=True))
        batch.add_column(sa.Column("rescanned_by", sa.String(128), nullable=False, server_default=""))
        batch.add_column(sa.Column("rescan_verdict", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Remove the users table and the rescan columns."""
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("rescan_verdict")
        batch.drop_column("rescanned_by")
        batch.drop_column("rescanned_at")
    op.drop_table("users")
