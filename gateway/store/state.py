"""Per-order and per-buyer state rows behind ``review.repeat`` and the proactive cap.

Events are appended once per ``(kind, key, queue_id)``: recording the same
message's events twice (a retried release) does not count twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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


def load(conn: Connection, order_ids: Sequence[str], buyer: str | None, buyer_since: datetime) -> MemoryState:
    """The events about ``order_ids``, and about ``buyer`` at or after ``buyer_since``, oldest first."""
    query = load_query(order_ids, buyer, buyer_since)
    if query is None:
        return MemoryState()
    return MemoryState(
        StateEvent(kind=EventKind(r["kind"]), key=r["key"], at=r["at"], queue_id=r["queue_id"])
        for r in conn.execute(query).mappings()
    )


def load_query(order_ids: Sequence[str], buyer: str | None, buyer_since: datetime) -> sa.Select[Any] | None:
    """The query behind :func:`load` (``None`` when there is nothing to ask).

    Order events are read whatever their age (one review request per order, ever);
    buyer events only over the proactive cap's period, since a busy buyer collects
    many. Both halves are served by the ``(kind, key, at)`` index.
    """
    conditions: list[sa.ColumnElement[bool]] = []
    if order_ids:
        conditions.append(sa.and_(state_events.c.kind.in_(_ORDER_KINDS), state_events.c.key.in_(list(order_ids))))
    if buyer:
        conditions.append(
            sa.and_(
                state_events.c.kind == EventKind.PROACTIVE.value,
                state_events.c.key == buyer,
                state_events.c.at >= buyer_since,
            )
        )
    if not conditions:
        return None
    return sa.select(state_events).where(sa.or_(*conditions)).order_by(state_events.c.at, state_events.c.id)


def purge_ids(conn: Connection, before: datetime, limit: int) -> list[int]:
    """Ids of up to ``limit`` events older than ``before``."""
    return [int(r) for r in conn.execute(purge_query(before, limit)).scalars()]


def purge_query(before: datetime, limit: int) -> sa.Select[Any]:
    """The query behind :func:`purge_ids`, served by the ``at`` index (revision 0003)."""
    return sa.select(state_events.c.id).where(state_events.c.at < before).order_by(state_events.c.at).limit(limit)


def delete_rows(conn: Connection, ids: Sequence[int]) -> int:
    """Delete the events ``ids``; return how many went."""
    return int(conn.execute(sa.delete(state_events).where(state_events.c.id.in_(list(ids)))).rowcount)
