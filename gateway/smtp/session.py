"""Per-connection and per-transaction state the gateway adds to aiosmtpd's.

aiosmtpd creates a ``Session`` per connection and an ``Envelope`` per
transaction; the server subclass creates these richer ones instead, and the
handler reads and fills them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import Envelope as AioEnvelope
from aiosmtpd.smtp import Session as AioSession

from gateway.config import AccountConfig
from gateway.model import Route


class GatewaySession(AioSession):
    """aiosmtpd's session plus who the client is."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_id: str, client: str) -> None:
        super().__init__(loop)
        self.conn_id = conn_id
        self.client = client  # peer IP address, without the port
        self.account: AccountConfig | None = None
        self.via_auth = False  # the account was proven by AUTH, not by network
        self.messages = 0

    # aiosmtpd's smtp_AUTH assigns login_data, whose setter logs a deprecation
    # warning on every login; the gateway keeps the account instead.
    @property
    def login_data(self) -> Any:
        """Unused legacy field."""
        return None

    @login_data.setter
    def login_data(self, value: Any) -> None:
        pass


class GatewayEnvelope(AioEnvelope):
    """aiosmtpd's envelope plus the gateway's queue id and the route chosen at RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.queue_id = ""
        self.route: Route | None = None
        self.declared_size: int | None = None  # MAIL FROM SIZE= (RFC 1870)
