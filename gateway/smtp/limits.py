"""Concurrent connection limits, in total and per client address.

aiosmtpd has no connection-count limit; without one a single misbehaving
client can exhaust a worker's file descriptors and memory (every session may
buffer a whole message). Like Postfix's ``smtpd_client_connection_count_limit``
(default 50) the limit is per worker process: with ``--workers N`` the host
accepts up to N times ``max_connections``.
"""

from __future__ import annotations

import enum
from collections import Counter


class Refusal(enum.Enum):
    """Why a connection was not admitted."""

    TOTAL = "total"
    PER_CLIENT = "per_client"


class ConnectionLimiter:
    """Counts open connections; :meth:`admit` before serving one, :meth:`release` when it ends."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self._max_total = max_total
        self._max_per_client = max_per_client
        self._per_client: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        """Connections currently admitted."""
        return self._total

    def admit(self, client: str) -> Refusal | None:
        """Count a new connection from ``client``, or say which limit refuses it."""
        if self._total >= self._max_total:
            return Refusal.TOTAL
        if self._per_client[client] >= self._max_per_client:
            return Refusal.PER_CLIENT
        self._total += 1
        self._per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        """Forget one admitted connection from ``client``."""
        self._total -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]
