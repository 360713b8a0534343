"""The listening side of one worker: the socket, TLS context and live connections.

:class:`SmtpServer` serves :class:`~gateway.smtp.server.GatewaySMTP` connections on
a socket bound with SO_REUSEPORT (:func:`bind_socket`), counts them for the
connection limits and drains them on shutdown.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import structlog

from gateway.config import Config
from gateway.smtp.auth import AccountDirectory
from gateway.smtp.limits import ConnectionLimiter
from gateway.smtp.server import GatewaySMTP

log = structlog.get_logger("gateway.smtp")


def make_tls_context(config: Config) -> ssl.SSLContext | None:
    """The server-side TLS context for STARTTLS, if a certificate is configured."""
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(server.tls_cert), str(server.tls_key))
    return context


class SmtpServer:
    """The listening socket and the live connections of one worker."""

    def __init__(self, config: Config, handler: Any, directory: AccountDirectory) -> None:
        self.config = config
        self.handler = handler
        self.directory = directory
        self.tls_context = make_tls_context(config)
        self.limiter = ConnectionLimiter(config.server.max_connections, config.server.max_connections_per_client)
        self.connections: set[GatewaySMTP] = set()
        self._server: asyncio.Server | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def _factory(self) -> GatewaySMTP:
        self._idle.clear()
        return GatewaySMTP(self.handler, owner=self, loop=asyncio.get_running_loop())

    def connection_gone(self) -> None:
        """Called by a connection when it ends."""
        if not self.connections:
            self._idle.set()

    async def start(self, sock: socket.socket) -> None:
        """Serve on ``sock`` (bound, not yet listening)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, sock=sock, backlog=1024)

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens."""
        assert self._server is not None
        assert self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting; let open transactions finish within ``grace`` seconds; 421 the rest."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.begin_shutdown()
        if self.connections:
            log.info("shutdown_draining", connections=len(self.connections), grace=grace)
            try:
                async with asyncio.timeout(grace):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("shutdown_grace_expired", connections=len(self.connections))
                for conn in list(self.connections):
                    conn.abort()
                # Give the aborted sessions a moment to unwind (their tasks are cancelled).
                async with asyncio.timeout(5):
                    await self._idle.wait()
        if self._server is not None:
            await self._server.wait_closed()


def bind_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening), with SO_REUSEPORT for workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock
