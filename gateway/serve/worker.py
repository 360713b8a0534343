"""One worker process: the composition root of the SMTP path.

The supervisor starts N of these (``--workers``); each builds its own parser,
policy holder, store connection and upstream pool, binds the SMTP port with
SO_REUSEPORT (the kernel spreads connections across workers) and serves until
SIGTERM/SIGINT, then drains gracefully. SIGHUP reloads the policies (a bad
policy set is refused and the running one kept; ``PolicyHolder.reload`` logs why).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing.synchronize import Event

import structlog

from gateway.config import Config
from gateway.eventloop import run
from gateway.logging import configure_logging
from gateway.mime.parse import MessageParser
from gateway.pipeline import Pipeline
from gateway.policy.holder import PolicyHolder
from gateway.smtp.auth import AccountDirectory
from gateway.smtp.handler import GatewayHandler
from gateway.smtp.listener import SmtpServer, bind_socket
from gateway.store import SqlStore, open_store
from gateway.upstream.pool import UpstreamPool

log = structlog.get_logger("gateway.serve")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to know; pickled to the spawned process."""

    config: Config
    host: str
    port: int
    index: int
    console: bool


def worker_main(spec: WorkerSpec, ready: Event) -> None:
    """Process entry point: build the components, serve, exit 0 after a graceful stop."""
    configure_logging(spec.config.logging, console=spec.console)
    structlog.contextvars.bind_contextvars(worker=spec.index)
    # The supervisor forwards SIGTERM; a terminal's Ctrl-C reaches every process of the
    # group, and both mean the same graceful stop once the loop runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        holder = PolicyHolder.load(spec.config)
        store = open_store(spec.config.database_url)
    except Exception:
        log.exception("worker_failed", stage="startup")
        sys.exit(1)
    parser = MessageParser(spec.config.parser)
    try:
        run(_serve(spec, ready, holder, store, parser), spec.config.server.event_loop)
    except Exception:
        log.exception("worker_failed", stage="serving")
        sys.exit(1)
    finally:
        parser.close()
        store.close()


async def _serve(spec: WorkerSpec, ready: Event, holder: PolicyHolder, store: SqlStore, parser: MessageParser) -> None:
    config = spec.config
    pool = UpstreamPool(config)
    pipeline = Pipeline(parser, lambda: holder.current, pool, store, config)
    handler = GatewayHandler(config, lambda: holder.current, pipeline)
    server = SmtpServer(config, handler, AccountDirectory(config))
    await server.start(bind_socket(spec.host, spec.port))

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        # The holder logs policy_reloaded, or policy_reload_failed and keeps the running one.
        await asyncio.to_thread(holder.reload)

    def on_hup() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    log.info("worker_started", listen=f"{spec.host}:{spec.port}", pid=os.getpid(), event_loop=type(loop).__module__)
    ready.set()
    await stop.wait()
    log.info("worker_stopping", grace=config.server.shutdown_grace)
    await server.shutdown(config.server.shutdown_grace)
    await pool.close()
    await pipeline.drain()
    pipeline.close()
    log.info("worker_stopped")
