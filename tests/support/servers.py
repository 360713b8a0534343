"""Real servers on loopback for the SMTP-core tests.

- :class:`LoopThread`: an asyncio loop in a thread, so synchronous ``smtplib``
  tests can drive servers running in it (aiosmtpd's own test style).
- :class:`CaptureHop`: a real aiosmtpd next hop that keeps what it receives.
- :func:`start_gateway`: the real gateway (server, handler, pipeline, upstream
  pool) with the fakes of :mod:`tests.support.fakes` behind the seams.
- :class:`SmtpSink`: Postfix's ``smtp-sink`` with its fault injection flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import Config, parse_config
from gateway.eventloop import LoopKind, loop_factory
from gateway.pipeline import Pipeline
from gateway.smtp.auth import AccountDirectory
from gateway.smtp.handler import GatewayHandler
from gateway.smtp.listener import SmtpServer, bind_socket
from gateway.upstream.pool import UpstreamPool
from tests.support.fakes import FakeParser, FakePolicy, FakeStore

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread.

    uvloop, as the workers run, unless ``GATEWAY_TEST_LOOP=asyncio`` asks for the
    standard library's loop.
    """

    def __init__(self, kind: LoopKind | None = None) -> None:
        chosen = kind or ("asyncio" if os.environ.get("GATEWAY_TEST_LOOP") == "asyncio" else "uvloop")
        self.loop = loop_factory(chosen)()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class CaptureHandler:
    """A next hop that keeps every message; optionally refuses some recipients."""

    messages: list[Captured] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    peers: set[object] = field(default_factory=set)  # client (ip, port)s that delivered: one per connection

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.peers.add(session.peer)
        self.messages.append(Captured(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: captured"


class CaptureHop:
    """A real aiosmtpd server on 127.0.0.1 (ephemeral port) that captures messages."""

    def __init__(self, loop_thread: LoopThread) -> None:
        self.handler = CaptureHandler()
        self._lt = loop_thread
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> CaptureHop:
        async def start() -> asyncio.Server:
            loop = asyncio.get_running_loop()
            return await loop.create_server(
                lambda: SMTP(self.handler, hostname="capture.test", loop=loop), "127.0.0.1", 0
            )

        self._server = self._lt.run(start())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def messages(self) -> list[Captured]:
        return self.handler.messages

    def stop(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()

        self._lt.run(stop())


def make_config(upstream_port: int, **sections: Any) -> Config:
    """A gateway config for tests: loopback account, upstream on ``upstream_port``."""
    raw: dict[str, Any] = {
        "data_dir": "/nonexistent",
        "server": {"listen": "127.0.0.1:0", "hostname": "gw.test", "processing_timeout": 10.0, "shutdown_grace": 2.0},
        "accounts": [{"name": "helpdesk", "networks": ["127.0.0.0/8"], "senders": ["@seller.example"]}],
        "upstreams": {"default": {"host": "127.0.0.1", "port": upstream_port, "tls": "none", "timeout": 5.0}},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_config(raw, "test", environ={})


@dataclass
class RunningGateway:
    host: str
    port: int
    config: Config
    server: SmtpServer
    pool: UpstreamPool
    pipeline: Pipeline
    parser: FakeParser
    policy: FakePolicy
    store: FakeStore
    loop_thread: LoopThread
    stopped: bool = False

    def drain(self) -> None:
        """Wait until the decision-log writes queued behind replies are done."""
        self.loop_thread.run(self.pipeline.drain())

    def shutdown(self, grace: float | None = None) -> None:
        if self.stopped:
            return
        self.stopped = True
        grace = self.config.server.shutdown_grace if grace is None else grace

        async def stop() -> None:
            await self.server.shutdown(grace)
            await self.pool.close()
            await self.pipeline.drain()

        self.loop_thread.run(stop(), timeout=grace + 30)
        self.pipeline.close()


def start_gateway(
    loop_thread: LoopThread,
    config: Config,
    *,
    parser: FakeParser | None = None,
    policy: FakePolicy | None = None,
    store: FakeStore | None = None,
) -> RunningGateway:
    """The real SMTP core on 127.0.0.1 (ephemeral port) with fakes behind the seams."""
    parser = parser or FakeParser()
    policy = policy or FakePolicy()
    store = store or FakeStore()
    current: Callable[[], FakePolicy] = lambda: policy  # noqa: E731

    async def start() -> tuple[SmtpServer, UpstreamPool, Pipeline]:
        pool = UpstreamPool(config)
        pipeline = Pipeline(parser, current, pool, store, config)
        handler = GatewayHandler(config, current, pipeline)
        server = SmtpServer(config, handler, AccountDirectory(config))
        await server.start(bind_socket("127.0.0.1", 0, reuse_port=False))
        return server, pool, pipeline

    server, pool, pipeline = loop_thread.run(start())
    host, port = server.address
    return RunningGateway(host, port, config, server, pool, pipeline, parser, policy, store, loop_thread)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port, dumping each message to a file.

    Running as root, smtp-sink drops to ``nobody`` (``-u``), so its dump
    directory lives in its own world-writable temporary directory rather than
    under pytest's private ``tmp_path``.
    """

    def __init__(self, *flags: str) -> None:
        self.flags = flags
        self.port = 0
        self.dump_dir = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        self.dump_dir.chmod(0o777)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SmtpSink:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        for _attempt in range(5):
            self.port = free_port()
            self._proc = subprocess.Popen(
                [SMTP_SINK, *user, "-d", f"{self.dump_dir}/m.", *self.flags, f"127.0.0.1:{self.port}", "64"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_for_port(self.port, timeout=3)
                return self
            except OSError:
                self._stop_process()
        raise RuntimeError("smtp-sink did not start")

    def messages(self) -> list[bytes]:
        """Dumped messages (each with smtp-sink's own X- headers first)."""
        return [p.read_bytes() for p in sorted(self.dump_dir.glob("m.*"))]

    def stop(self) -> None:
        self._stop_process()
        shutil.rmtree(self.dump_dir, ignore_errors=True)

    def _stop_process(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
