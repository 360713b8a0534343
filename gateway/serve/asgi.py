"""Extra HTTP services run by the supervisor next to the SMTP workers (uvicorn).

``gateway serve`` is the one process ops start; web surfaces (the admin
console, later issues) are ASGI apps served here, in the supervisor's event
loop, on their own listen address. See :func:`gateway.serve.cli.extra_services`
for where they are plugged in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger("gateway.serve")


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: the supervisor owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServiceError(Exception):
    """An extra service could not start (the reason is logged by the service itself)."""


class AsgiService:
    """An ASGI application served by uvicorn inside the running event loop."""

    def __init__(self, name: str, app: Any, host: str, port: int) -> None:
        self.name = name
        self._server = _Server(
            uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="auto")
        )
        self._task: asyncio.Task[None] | None = None
        self._listen = f"{host}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (after :meth:`start`)."""
        sockets = [s for server in self._server.servers for s in server.sockets]
        host, port = sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:
            # uvicorn logs why it cannot start (say, the address is in use) and calls
            # sys.exit; inside the supervisor that must be an ordinary failure.
            raise ServiceError(f"{self.name} could not start on {self._listen} (uvicorn exit {exc.code})") from None

    async def start(self) -> None:
        """Start serving; returns once the socket listens.

        Raises:
            ServiceError: it could not start (uvicorn has logged why).
        """
        self._task = asyncio.get_running_loop().create_task(self._serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ServiceError(f"{self.name} stopped before it started")
            await asyncio.sleep(0.02)
        host, port = self.address
        log.info("service_started", service=self.name, listen=f"{host}:{port}")

    async def stop(self) -> None:
        """Stop accepting and finish open requests."""
        if self._task is None:
            return
        if self._task.done():  # it never started, or already stopped: start() reported why
            return
        self._server.should_exit = True
        await self._task
        log.info("service_stopped", service=self.name)
