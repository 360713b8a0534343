"""Per-order and per-buyer state that stateful rules read (``review.repeat``, caps, timing).

The policy engine is pure: it reads a :class:`State` and never writes. After a
message leaves (relayed, or released from quarantine) the pipeline records
:class:`StateEvent` rows through the store. :class:`MemoryState` is the real
in-memory implementation: the engine's tests use it directly, and the store
loads the rows relevant to one message into one before evaluation, so the
engine never does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.model import Signal, Verdict


class EventKind(enum.StrEnum):
    """What a state row remembers."""

    REVIEW_REQUEST = "review_request"  # key: order id; a review/feedback request left for it
    PROACTIVE = "proactive"  # key: buyer; a proactive (non-reply) message reached the buyer
    ORDER_SEEN = "order_seen"  # key: order id; first time the order id appeared in outbound mail


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One remembered fact: ``kind`` happened for ``key`` at ``at`` (message ``queue_id``)."""

    kind: EventKind
    key: str
    at: datetime
    queue_id: str = ""


class State(Protocol):
    """Read-only view of past events, as the policy engine sees it."""

    def review_requested(self, order_id: str) -> datetime | None:
        """When a review or feedback request for ``order_id`` was sent, if ever."""
        ...

    def proactive_count(self, buyer: str, since: datetime) -> int:
        """Proactive messages that reached ``buyer`` at or after ``since``."""
        ...

    def order_first_seen(self, order_id: str) -> datetime | None:
        """When ``order_id`` first appeared in outbound mail, if ever."""
        ...


class MemoryState:
    """A :class:`State` held in memory; also the snapshot type the store returns."""

    def __init__(self, events: Iterable[StateEvent] = ()) -> None:
        self._events: list[StateEvent] = []
        self.record(events)

    def record(self, events: Iterable[StateEvent]) -> None:
        """Remember ``events``."""
        self._events.extend(events)

    @property
    def events(self) -> tuple[StateEvent, ...]:
        """Everything remembered, in insertion order."""
        return tuple(self._events)

    def _first(self, kind: EventKind, key: str) -> datetime | None:
        times = [e.at for e in self._events if e.kind is kind and e.key == key]
        return min(times) if times else None

    def review_requested(self, order_id: str) -> datetime | None:
        """When a review or feedback request for ``order_id`` was sent, if ever."""
        return self._first(EventKind.REVIEW_REQUEST, order_id)

    def proactive_count(self, buyer: str, since: datetime) -> int:
        """Proactive messages that reached ``buyer`` at or after ``since``."""
        return sum(1 for e in self._events if e.kind is EventKind.PROACTIVE and e.key == buyer and e.at >= since)

    def order_first_seen(self, order_id: str) -> datetime | None:
        """When ``order_id`` first appeared in outbound mail, if ever."""
        return self._first(EventKind.ORDER_SEEN, order_id)


EMPTY_STATE = MemoryState()


def delivery_events(verdict: Verdict, queue_id: str, at: datetime) -> list[StateEvent]:
    """The events to record once a message reached the buyer (relayed, or released from quarantine).

    Every order id is seen; a review request is remembered per order (``review.repeat``);
    a proactive message counts against its buyer (the per-buyer cap).
    """
    events = [StateEvent(EventKind.ORDER_SEEN, order_id, at, queue_id) for order_id in verdict.order_ids]
    if Signal.REVIEW_REQUEST in verdict.signals:
        events += [StateEvent(EventKind.REVIEW_REQUEST, order_id, at, queue_id) for order_id in verdict.order_ids]
    if Signal.PROACTIVE in verdict.signals and verdict.buyer:
        events.append(StateEvent(EventKind.PROACTIVE, verdict.buyer, at, queue_id))
    return events
