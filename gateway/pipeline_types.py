"""The seams the per-message pipeline is composed of: parser, policy, relay, store.

Each protocol has one real implementation in the package (``mime``, ``policy``,
``upstream``, ``store``) and, where a test needs one, a small fake beside the
tests. :mod:`gateway.pipeline` composes them as ``parse -> evaluate -> act``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from gateway.mime.types import ParsedMessage
from gateway.model import Decision, Route, Verdict
from gateway.state import MemoryState, State, StateEvent


class Parser(Protocol):
    """Turns raw bytes into a :class:`ParsedMessage`; never raises on bad input."""

    async def parse(self, raw: bytes) -> ParsedMessage:
        """Parse ``raw`` (heavy extraction may run in a process pool)."""
        ...

    def parse_headers(self, raw: bytes) -> ParsedMessage:
        """Only the top-level headers (subject, addresses, threading); cheap and synchronous."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyNeeds:
    """What evaluating a profile's active rules reads.

    A profile whose rules read no content (or none at all) lets the pipeline
    skip the full parse; one with no stateful rule lets it skip the state read.
    ``buyer_period`` is how far back per-buyer history matters (the proactive
    cap's period); ``None`` when no active rule reads it, so none is loaded.
    """

    content: bool = True
    state: bool = True
    buyer_period: timedelta | None = None


class Policy(Protocol):
    """The loaded policy: routing by recipient and the pure evaluation."""

    def route(self, recipients: Sequence[str]) -> Route:
        """The route for a message to ``recipients`` (all must share one profile)."""
        ...

    def evaluate(self, parsed: ParsedMessage, route: Route, state: State) -> Verdict:
        """Decide ``parsed`` under ``route``'s profile; pure and deterministic."""
        ...

    def needs(self, profile: str) -> PolicyNeeds:
        """What evaluating ``profile``'s active rules reads."""
        ...


@dataclass(frozen=True, slots=True)
class RelayResult:
    """The upstream accepted the message for at least one recipient.

    Attributes:
        reply: the upstream's final reply text (``"250 2.0.0 Ok: queued as 4F2"``).
        refused: recipients the upstream refused, ``address -> (code, message)``.
    """

    reply: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


class RelayError(Exception):
    """The upstream did not take the message (or could not be reached).

    ``code`` is the upstream's reply code, or 451 for connection problems and
    timeouts; 4xx is temporary (the sender retries), 5xx permanent.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message

    @property
    def temporary(self) -> bool:
        """Whether the sender should retry."""
        return self.code < 500


class Relay(Protocol):
    """Hands a message to a named upstream (pooled connections)."""

    async def relay(self, upstream: str, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> RelayResult:
        """Send ``data``; raise :class:`RelayError` unless at least one recipient was accepted."""
        ...


class Store(Protocol):
    """What the pipeline needs from the store. Synchronous: call it from a thread."""

    def record_decision(self, decision: Decision) -> None:
        """Append ``decision`` to the decision log."""
        ...

    def quarantine(self, decision: Decision, raw: bytes) -> str:
        """Durably store the message and its decision in one transaction; return its id.

        Returns only after the commit is on disk: the SMTP 250 depends on it.
        """
        ...

    def load_state(self, order_ids: Sequence[str], buyer: str | None, buyer_since: datetime) -> MemoryState:
        """A snapshot of the state rows about these orders, and about this buyer since ``buyer_since``."""
        ...

    def record_events(self, events: Sequence[StateEvent]) -> None:
        """Remember per-order/per-buyer events after a message left."""
        ...

    def record_batch(self, batch: Sequence[Decision], events: Sequence[StateEvent]) -> None:
        """Append several decisions and state events in one transaction (group commit)."""
        ...
