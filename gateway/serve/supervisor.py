"""The supervisor: N worker processes sharing the SMTP port, signals, restarts.

``gateway serve`` runs this in the foreground (systemd, a container, a
terminal). It

- reserves the SMTP port with a bound, never-listening SO_REUSEPORT socket, so
  ``listen = "127.0.0.1:0"`` gives every worker the same free port and no other
  program can take it between worker restarts;
- in ``--dev``, starts the capture next hop first (the workers relay to it);
- spawns ``workers`` processes (fresh interpreters: nothing of the supervisor's
  event loop leaks into them) and waits until each listens;
- serves extra ASGI services (the admin console, later) in its own loop;
- forwards SIGTERM/SIGINT (graceful stop: the workers drain within
  ``server.shutdown_grace``) and SIGHUP (policy reload) to the workers;
- restarts a worker that dies, with a backoff; if a worker cannot start at all
  (bad policies, unreachable database) it stops everything and exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Protocol

import structlog

from gateway.config import Config
from gateway.serve.asgi import ServiceError
from gateway.serve.capture import start_capture
from gateway.serve.worker import WorkerSpec, worker_main
from gateway.smtp.listener import bind_socket

log = structlog.get_logger("gateway.serve")

#: Seconds a worker may take to build its components and listen.
STARTUP_TIMEOUT = 120.0
#: Seconds beyond the shutdown grace before a worker that will not exit is killed.
KILL_MARGIN = 10.0
#: Upper bound of the restart backoff, in seconds.
MAX_BACKOFF = 30.0

_SPAWN = multiprocessing.get_context("spawn")


class Service(Protocol):
    """Something the supervisor runs next to the workers (e.g. :class:`~gateway.serve.asgi.AsgiService`)."""

    name: str

    async def start(self) -> None:
        """Start serving (raises :class:`ServiceError` if it cannot)."""
        ...

    async def stop(self) -> None:
        """Stop serving."""
        ...


@dataclass(frozen=True)
class CaptureSpec:
    """Where the ``--dev`` capture hop listens and writes."""

    host: str
    port: int
    directory: Path


@dataclass
class _Worker:
    index: int
    process: SpawnProcess | None = None
    ready: EventType | None = None
    failures: list[float] = field(default_factory=list)  # recent crash times, for the backoff


class Supervisor:
    """Runs the workers and services until a stop signal."""

    def __init__(
        self,
        config: Config,
        *,
        workers: int,
        console: bool,
        capture: CaptureSpec | None = None,
        services: Sequence[Service] = (),
    ) -> None:
        self._config = config
        self._count = workers
        self._console = console
        self._capture = capture
        self._services = list(services)
        self._workers = [_Worker(i) for i in range(workers)]
        self._stopping = False
        self._stop = asyncio.Event()
        self._failed = False
        self._worker_config: tuple[Config, str, int] | None = None

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the process exit status."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)

        config = self._config
        capture_server = None
        if self._capture is not None:
            capture_server = await start_capture(self._capture.directory, self._capture.host, self._capture.port)
            port = int(capture_server.sockets[0].getsockname()[1])
            default = config.upstreams["default"].model_copy(update={"host": self._capture.host, "port": port})
            config = config.model_copy(update={"upstreams": {**config.upstreams, "default": default}})
            log.info("capture_started", listen=f"{self._capture.host}:{port}", directory=str(self._capture.directory))

        host, port = config.server.listen_address
        try:
            reservation = bind_socket(host, port)
        except OSError as exc:
            # Another server has the port, or the address is not this host's.
            log.error("listen_failed", listen=f"{host}:{port}", error=exc.strerror or str(exc))
            if capture_server is not None:
                capture_server.close()
                await capture_server.wait_closed()
            return 1
        port = int(reservation.getsockname()[1])
        try:
            started = await self._start_workers(config, host, port)
            if started and await self._start_services():
                log.info("server_started", listen=f"{host}:{port}", workers=self._count, dev=config.dev)
                await self._stop.wait()
        finally:
            self._stopping = True
            await self._stop_workers()
            for service in self._services:
                await service.stop()
            if capture_server is not None:
                capture_server.close()
                await capture_server.wait_closed()
            reservation.close()
            log.info("server_stopped")
        return 1 if self._failed else 0

    async def _start_services(self) -> bool:
        """Start the extra services (the admin console); False (and exit status 1) if one cannot."""
        for service in self._services:
            try:
                await service.start()
            except ServiceError as exc:
                log.error("service_failed", service=service.name, error=str(exc))
                self._failed = True
                return False
        return True

    # --- workers --------------------------------------------------------------------

    async def _start_workers(self, config: Config, host: str, port: int) -> bool:
        self._worker_config = (config, host, port)
        for worker in self._workers:
            self._spawn(worker)
        for worker in self._workers:
            if not await self._wait_ready(worker):
                log.error("worker_failed_to_start", worker=worker.index)
                self._failed = True
                return False
        return True

    def _spawn(self, worker: _Worker) -> None:
        assert self._worker_config is not None
        config, host, port = self._worker_config
        spec = WorkerSpec(config, host, port, worker.index, self._console)
        ready = _SPAWN.Event()
        process = _SPAWN.Process(target=worker_main, args=(spec, ready), name=f"gateway-worker-{worker.index}")
        process.start()
        worker.process, worker.ready = process, ready
        asyncio.get_running_loop().add_reader(process.sentinel, self._on_exit, worker)

    async def _wait_ready(self, worker: _Worker) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        process, ready = worker.process, worker.ready
        assert process is not None
        assert ready is not None
        while time.monotonic() < deadline:
            if ready.is_set():
                return True
            if not process.is_alive() or self._stop.is_set():
                return False
            await asyncio.sleep(0.05)
        return False

    def _on_exit(self, worker: _Worker) -> None:
        process = worker.process
        assert process is not None
        asyncio.get_running_loop().remove_reader(process.sentinel)
        process.join()
        if self._stopping:
            return
        log.error("worker_exited", worker=worker.index, exitcode=process.exitcode)
        if worker.ready is None or not worker.ready.is_set():
            return  # startup failure: _wait_ready reports it
        now = time.monotonic()
        worker.failures = [t for t in worker.failures if now - t < 300] + [now]
        delay = min(2.0 ** (len(worker.failures) - 1), MAX_BACKOFF)
        asyncio.get_running_loop().call_later(delay, self._restart, worker)

    def _restart(self, worker: _Worker) -> None:
        if self._stopping:
            return
        log.info("worker_restarting", worker=worker.index)
        self._spawn(worker)

    def _forward(self, sig: signal.Signals) -> None:
        for worker in self._workers:
            process = worker.process
            if process is not None and process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)

    def _request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("server_stopping")
        self._stop.set()

    async def _stop_workers(self) -> None:
        self._forward(signal.SIGTERM)
        deadline = time.monotonic() + self._config.server.shutdown_grace + KILL_MARGIN
        for worker in self._workers:
            process = worker.process
            if process is None:
                continue
            await asyncio.to_thread(process.join, max(deadline - time.monotonic(), 0))
            if process.is_alive():
                log.warning("worker_killed", worker=worker.index)
                process.kill()
                await asyncio.to_thread(process.join, 5)
