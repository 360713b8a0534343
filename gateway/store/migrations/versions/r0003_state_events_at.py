"""An index on ``state_events.at`` for the state retention purge.

Loading state for a message is served by ``(kind, key, at)``; the purge selects
old events of every kind and key, which that index cannot serve.

Revision ID: 0003
Revises: 0002
Create Date: 2025-05-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``ix_state_events_at``."""
    op.create_index("ix_state_events_at", "state_events", ["at"])


def downgrade() -> None:
    """Drop ``ix_state_events_at``."""
    op.drop_index("ix_state_events_at", table_name="state_events")
