"""Per-order and per-buyer state rows behind ``review.repeat`` and the proactive cap.

Events are appended once per ``(kind, key, queue_id)``: recording the same
message's events twice (a retried release) does not count twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.state import EventKind, MemoryState, StateEvent
from gateway.store.schema import state_events

_ORDER_KINDS = (EventKind.REVIEW_REQUEST.value, EventKind.ORDER_SEEN.value)


def record(conn: Connection, events: Sequence[StateEvent]) -> None:
    """Append ``events``, skipping any already recorded for the same message."""
    if not events:
        return
    rows = [{"kind": e.kind.value, "key": e.key, "at": e.at, "queue_id": e.queue_id} for e in events]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(state_events).on_conflict_do_nothing(index_elements=["kind", "key", "queue_id"])
    conn.execute(stmt, rows)


def load(conn: Connection, order_ids: Sequence[str], buyer: str | None) -> MemoryState:
    """The events about ``order_ids`` and about ``buyer``, oldest first."""
    conditions: list[sa.ColumnElement[bool]] = []
    if order_ids:
        conditions.append(sa.and_(state_events.c.kind.in_(_ORDER_KINDS), state_events.c.key.in_(list(order_ids))))
    if buyer:
        conditions.append(sa.and_(state_events.c.kind == EventKind.PROACTIVE.value, state_events.c.key == buyer))
    if not conditions:
        return MemoryState()
    rows = conn.execute(
        sa.select(state_events).where(sa.or_(*conditions)).order_by(state_events.c.at, state_events.c.id)
    ).mappings()
    return MemoryState(
        StateEvent(kind=EventKind(r["kind"]), key=r["key"], at=r["at"], queue_id=r["queue_id"]) for r in rows
    )
