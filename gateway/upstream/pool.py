"""The upstream relay: pooled, reused aiosmtplib connections per configured next hop.

:class:`UpstreamPool` implements the :class:`~gateway.pipeline_types.Relay`
seam. Each upstream keeps up to ``pool_size`` connections; a message takes an
idle one or opens a new one, runs ``MAIL``/``RCPT``/``DATA`` and gives it back.
After a delivered message the session is already clean (the final 250 ends the
transaction); after a refusal it is reset with ``RSET`` in the background
before it is given back (so that round trip is never in front of a message).
Connections are
recycled after ``max_messages_per_connection`` messages or ``idle_timeout``
seconds idle, and dropped on any error so the next message starts clean.

Failure mapping (the pipeline turns it into the SMTP reply):

- cannot connect, TLS or AUTH to the upstream fails, timeout, connection lost:
  ``RelayError(451, ...)``; only a pooled connection found closed at ``MAIL``
  (the next hop dropped it while idle, or answers 421 as it closes) is retried,
  on a fresh one, since nothing was sent yet;
- the upstream answers 4xx/5xx to ``MAIL``/``DATA``, or refuses every recipient:
  ``RelayError`` with its own code;
- some recipients refused, others accepted: :class:`RelayResult` lists the
  refused ones (the pipeline sends a DSN for them).

The pool binds to the event loop it is first used in and starts afresh in a
new one, so the review service may create one inside ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosmtplib
import structlog

from gateway.config import Config, UpstreamConfig
from gateway.pipeline_types import RelayError, RelayResult

log = structlog.get_logger("gateway.upstream")

#: Seconds allowed for a polite QUIT when a pooled connection is retired.
QUIT_TIMEOUT = 2.0


@dataclass(slots=True)
class _Connection:
    smtp: aiosmtplib.SMTP
    created: float
    last_used: float
    messages: int = 0


@dataclass(slots=True)
class _HostPool:
    name: str
    config: UpstreamConfig
    slots: asyncio.Semaphore
    idle: list[_Connection] = field(default_factory=list)
    reaper: asyncio.TimerHandle | None = None
    recycling: int = 0  # connections being reset in the background
    returned: asyncio.Condition = field(default_factory=asyncio.Condition)


class _StaleError(Exception):
    """A pooled connection turned out dead at MAIL: nothing was sent, retry on a fresh one."""


class UpstreamPool:
    """Relays messages to the configured upstreams over pooled connections."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._pools: dict[str, _HostPool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._recycling: set[asyncio.Task[None]] = set()

    async def relay(self, upstream: str, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> RelayResult:
        """Send ``data`` from ``mail_from`` to ``rcpt_tos`` through ``upstream``.

        Raises:
            RelayError: no recipient was accepted (see the module docstring for codes).
            KeyError: ``upstream`` is not configured (a programming error).
        """
        pool = self._pool(upstream)
        await pool.slots.acquire()
        handed_over = False  # the slot now belongs to a background RSET
        try:
            conn = self._take_idle(pool) or await self._await_recycled(pool) or await self._connect(pool)
            try:
                try:
                    result = await self._transaction(pool, conn, mail_from, rcpt_tos, data)
                except _StaleError:
                    conn.smtp.close()
                    log.info("upstream_connection_stale", upstream=pool.name, messages=conn.messages)
                    conn = await self._connect(pool)
                    result = await self._transaction(pool, conn, mail_from, rcpt_tos, data)
            except RelayError as exc:
                # After a refusal the session is still in sync (aiosmtplib raised on a
                # clean reply); after a 421 or a lost connection it is not.
                if exc.code != 421 and conn.smtp.is_connected:
                    handed_over = self._recycle(pool, conn)
                else:
                    conn.smtp.close()
                raise
            except BaseException:
                # Cancelled or crashed mid-transaction: the session state is unknown.
                conn.smtp.close()
                raise
            conn.messages += 1
            # The 250 after the data ended the transaction (RFC 5321 4.1.1.4): the
            # session is clean, so no RSET is needed before the next message. A
            # connection the next hop dropped while idle is caught at the next MAIL.
            self._give_back(pool, conn)
            return result
        finally:
            if not handed_over:
                pool.slots.release()

    async def close(self) -> None:
        """Quit every idle connection; busy ones close when their message is done."""
        self._adopt_loop()
        self._closed = True
        if self._recycling:
            await asyncio.gather(*self._recycling, return_exceptions=True)
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            if pool.reaper is not None:
                pool.reaper.cancel()
            idle, pool.idle = pool.idle, []
            await asyncio.gather(*(self._quit(c) for c in idle))

    # --- pool bookkeeping --------------------------------------------------------

    def _adopt_loop(self) -> None:
        """Bind to the running loop; in a new one (a second asyncio.run), start afresh."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # The old connections belong to a loop that may be closed: drop them.
        for old in self._pools.values():
            for conn in old.idle:
                with contextlib.suppress(Exception):
                    conn.smtp.close()
        self._pools = {}
        self._loop = loop
        self._closed = False

    def _pool(self, name: str) -> _HostPool:
        self._adopt_loop()
        pool = self._pools.get(name)
        if pool is None:
            config = self._config.upstreams[name]
            pool = _HostPool(name=name, config=config, slots=asyncio.Semaphore(config.pool_size))
            self._pools[name] = pool
        return pool

    def _take_idle(self, pool: _HostPool) -> _Connection | None:
        now = time.monotonic()
        while pool.idle:
            conn = pool.idle.pop()  # most recently used first: fewer connections stay warm
            if conn.smtp.is_connected and now - conn.last_used < pool.config.idle_timeout:
                return conn
            self._retire(conn)
        return None

    def _give_back(self, pool: _HostPool, conn: _Connection) -> None:
        conn.last_used = time.monotonic()
        if self._closed or conn.messages >= pool.config.max_messages_per_connection:
            self._retire(conn)
            return
        pool.idle.append(conn)
        if pool.reaper is None:
            loop = asyncio.get_running_loop()
            pool.reaper = loop.call_later(pool.config.idle_timeout, self._reap, pool)

    def _reap(self, pool: _HostPool) -> None:
        """Retire connections idle longer than ``idle_timeout``; re-arm while some remain."""
        pool.reaper = None
        now = time.monotonic()
        keep = []
        for conn in pool.idle:
            if now - conn.last_used >= pool.config.idle_timeout:
                self._retire(conn)
            else:
                keep.append(conn)
        pool.idle = keep
        if keep:
            oldest = min(c.last_used for c in keep)
            delay = max(pool.config.idle_timeout - (now - oldest), 0.05)
            pool.reaper = asyncio.get_running_loop().call_later(delay, self._reap, pool)

    def _retire(self, conn: _Connection) -> None:
        if conn.smtp.is_connected:
            task = asyncio.get_running_loop().create_task(self._quit(conn))
            # Keep a reference until done, or the task may be collected mid-QUIT.
            _background.add(task)
            task.add_done_callback(_background.discard)

    @staticmethod
    async def _quit(conn: _Connection) -> None:
        try:
            await conn.smtp.quit(timeout=QUIT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            conn.smtp.close()

    # --- the SMTP conversation ---------------------------------------------------

    async def _connect(self, pool: _HostPool) -> _Connection:
        cfg = pool.config
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.tls == "implicit",
            start_tls=cfg.tls == "starttls",
            validate_certs=cfg.verify_tls,
            cert_bundle=str(cfg.ca_file) if cfg.ca_file else None,
            local_hostname=cfg.helo_name or self._config.server.hostname,
            timeout=cfg.timeout,
            username=cfg.username,
            password=password,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            log.error(
                "upstream_failed", upstream=pool.name, host=cfg.host, stage="auth", code=exc.code, error=exc.message
            )
            raise RelayError(451, f"authentication to next hop {pool.name} failed") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            log.error(
                "upstream_failed", upstream=pool.name, host=cfg.host, port=cfg.port, stage="connect", error=str(exc)
            )
            raise RelayError(451, f"cannot connect to next hop {pool.name}: {_describe(exc)}") from exc
        now = time.monotonic()
        return _Connection(smtp=smtp, created=now, last_used=now)

    def _recycle(self, pool: _HostPool, conn: _Connection) -> bool:
        """RSET ``conn`` in the background, then return it (and its slot) to the pool.

        Used after a refusal, which may leave a transaction open. The RSET round trip
        happens after the reply is on its way, not in front of the next message.
        Returns whether the slot was handed to the background task.
        """
        if self._closed or conn.messages >= pool.config.max_messages_per_connection:
            self._retire(conn)
            return False
        pool.recycling += 1  # now, not when the task starts: the next message must see it
        task = asyncio.get_running_loop().create_task(self._reset_then_give_back(pool, conn))
        self._recycling.add(task)
        task.add_done_callback(self._recycling.discard)
        return True

    async def _reset_then_give_back(self, pool: _HostPool, conn: _Connection) -> None:
        try:
            if await self._reset(conn):
                self._give_back(pool, conn)
            else:
                conn.smtp.close()
        finally:
            pool.recycling -= 1
            pool.slots.release()
            async with pool.returned:
                pool.returned.notify_all()

    async def _await_recycled(self, pool: _HostPool) -> _Connection | None:
        """A connection being reset is a round trip away; a new one is several: wait for it."""
        if not pool.recycling:
            return None
        try:
            async with asyncio.timeout(pool.config.timeout), pool.returned:
                await pool.returned.wait_for(lambda: bool(pool.idle) or not pool.recycling)
        except TimeoutError:
            return None
        return self._take_idle(pool)

    @staticmethod
    async def _reset(conn: _Connection) -> bool:
        try:
            response = await conn.smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False
        return response.code == 250

    async def _transaction(
        self, pool: _HostPool, conn: _Connection, mail_from: str, rcpt_tos: Sequence[str], data: bytes
    ) -> RelayResult:
        smtp = conn.smtp
        utf8 = not (mail_from.isascii() and all(r.isascii() for r in rcpt_tos))
        encoding = "utf-8" if utf8 else "ascii"
        options: list[str] = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                raise RelayError(553, f"5.6.7 next hop {pool.name} does not support SMTPUTF8 addresses")
            options.append("SMTPUTF8")
        if not data.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        stage = "mail"
        try:
            await smtp.mail(mail_from, options=options, encoding=encoding)
            stage = "rcpt"
            refused: dict[str, tuple[int, str]] = {}
            for rcpt in rcpt_tos:
                try:
                    await smtp.rcpt(rcpt, encoding=encoding)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[rcpt] = (exc.code, exc.message)
            if len(refused) == len(rcpt_tos):
                code, message = _most_hopeful(list(refused.values()))
                log.warning("upstream_refused", upstream=pool.name, stage=stage, code=code, error=message)
                raise RelayError(code, message)
            stage = "data"
            response = await smtp.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            if stage == "mail" and exc.code == 421 and conn.messages > 0:
                # A reused connection the next hop is closing (its idle timeout): nothing was sent.
                raise _StaleError from exc
            log.warning("upstream_refused", upstream=pool.name, stage=stage, code=exc.code, error=exc.message)
            raise RelayError(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if stage == "mail" and conn.messages > 0:
                # A reused connection the next hop closed while it was idle.
                raise _StaleError from exc
            log.error("upstream_failed", upstream=pool.name, host=pool.config.host, stage=stage, error=str(exc))
            raise RelayError(451, f"next hop {pool.name} failed during {stage.upper()}: {_describe(exc)}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.error("upstream_failed", upstream=pool.name, host=pool.config.host, stage=stage, error=str(exc))
            raise RelayError(451, f"next hop {pool.name} failed during {stage.upper()}: {_describe(exc)}") from exc
        return RelayResult(reply=f"{response.code} {response.message}", refused=refused)


# Retiring QUIT tasks, kept referenced until they finish.
_background: set[asyncio.Task[None]] = set()


def _most_hopeful(refusals: list[tuple[int, str]]) -> tuple[int, str]:
    """When every recipient is refused: a temporary refusal wins (a retry may succeed)."""
    temporary = [r for r in refusals if r[0] < 500]
    return (temporary or refusals)[0]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
