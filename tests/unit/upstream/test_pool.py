"""The pooled upstream relay against real next hops: aiosmtpd and Postfix's smtp-sink."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gateway.config import Config
from gateway.pipeline_types import RelayError
from gateway.upstream.pool import UpstreamPool
from tests.support.messages import BUYER, SELLER, message
from tests.support.servers import CaptureHandler, SmtpSink, free_port, make_config


async def serve(handler: CaptureHandler, **smtp_kwargs: Any) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="hop.test", loop=loop, **smtp_kwargs), "127.0.0.1", 0
    )


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def hop() -> AsyncIterator[tuple[CaptureHandler, int]]:
    handler = CaptureHandler()
    server = await serve(handler)
    yield handler, port_of(server)
    server.close()


def pool_config(port: int, **upstream: Any) -> Config:
    settings = {"host": "127.0.0.1", "port": port, "tls": "none", "timeout": 5.0, **upstream}
    return make_config(port, upstreams={"default": settings})


class CountingHandler(CaptureHandler):
    """A capture hop that also counts RSETs and can answer MAIL with a 421 on a reused session."""

    def __init__(self, *, closing_after: int = 0) -> None:
        super().__init__()
        self.resets = 0
        self.closing_after = closing_after  # answer MAIL with 421 once a session delivered this many
        self.delivered: dict[int, int] = {}

    async def handle_RSET(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.resets += 1
        return "250 OK"

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.closing_after and self.delivered.get(id(session), 0) >= self.closing_after:
            return "421 4.4.2 hop.test closing idle connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.delivered[id(session)] = self.delivered.get(id(session), 0) + 1
        return await super().handle_DATA(server, session, envelope)


async def test_relays_and_reuses_one_connection() -> None:
    """Consecutive messages go over one pooled connection, byte for byte, with no RSET after a delivery."""
    handler = CountingHandler()
    server = await serve(handler)
    pool = UpstreamPool(pool_config(port_of(server)))
    data = message()
    for _ in range(3):
        result = await pool.relay("default", SELLER, [BUYER], data)
        assert result.reply.startswith("250 ")
        assert result.refused == {}
    await pool.close()
    server.close()
    assert [m.data for m in handler.messages] == [data] * 3
    assert len(handler.peers) == 1
    assert handler.resets == 0  # the final 250 ended each transaction


async def test_refusal_is_followed_by_rset_before_reuse() -> None:
    """After the next hop refused every recipient, the connection is reset before the next message uses it."""
    handler = CountingHandler()
    handler.refuse[BUYER] = "550 5.1.1 no such buyer"
    server = await serve(handler)
    pool = UpstreamPool(pool_config(port_of(server)))
    with pytest.raises(RelayError):
        await pool.relay("default", SELLER, [BUYER], message("refused"))
    result = await pool.relay("default", SELLER, ["other@example.org"], message("next"))
    assert result.reply.startswith("250 ")
    await pool.close()
    server.close()
    assert handler.resets == 1
    assert len(handler.peers) == 1


async def test_421_at_mail_on_a_reused_connection_is_retried_on_a_fresh_one() -> None:
    """A pooled connection the hop is closing (421 at MAIL) costs nothing: the message goes over a new one."""
    handler = CountingHandler(closing_after=1)
    server = await serve(handler)
    pool = UpstreamPool(pool_config(port_of(server)))
    await pool.relay("default", SELLER, [BUYER], message("first"))
    result = await pool.relay("default", SELLER, [BUYER], message("second"))
    assert result.reply.startswith("250 ")
    await pool.close()
    server.close()
    assert [m.data for m in handler.messages] == [message("first"), message("second")]
    assert len(handler.peers) == 2


async def test_recycles_after_max_messages(hop: tuple[CaptureHandler, int]) -> None:
    """A connection is retired after max_messages_per_connection messages."""
    handler, port = hop
    pool = UpstreamPool(pool_config(port, max_messages_per_connection=2))
    for _ in range(5):
        await pool.relay("default", SELLER, [BUYER], message())
    await pool.close()
    assert len(handler.messages) == 5
    assert len(handler.peers) == 3


async def test_concurrent_messages_bounded_by_pool_size(hop: tuple[CaptureHandler, int]) -> None:
    """Many concurrent messages use at most pool_size connections and all arrive."""
    handler, port = hop
    pool = UpstreamPool(pool_config(port, pool_size=3))
    await asyncio.gather(*(pool.relay("default", SELLER, [BUYER], message(f"m{i}")) for i in range(20)))
    await pool.close()
    assert len(handler.messages) == 20
    assert len(handler.peers) <= 3


async def test_stale_pooled_connection_is_replaced() -> None:
    """When the next hop dropped an idle pooled connection, the next message still goes through."""
    handler = CaptureHandler()
    protocols: list[SMTP] = []
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        protocols.append(SMTP(handler, hostname="hop.test", loop=loop))
        return protocols[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    pool = UpstreamPool(pool_config(port_of(server)))
    await pool.relay("default", SELLER, [BUYER], message("first"))
    for protocol in protocols:  # the hop drops the idle connection (as on its idle timeout)
        assert protocol.transport is not None
        protocol.transport.close()
    await asyncio.sleep(0.05)
    result = await pool.relay("default", SELLER, [BUYER], message("second"))
    assert result.reply.startswith("250 ")
    assert [m.data for m in handler.messages] == [message("first"), message("second")]
    assert len(handler.peers) == 2
    await pool.close()
    server.close()


async def test_unreachable_upstream_is_451() -> None:
    """Nothing listening: RelayError 451, not an exception of another kind."""
    pool = UpstreamPool(pool_config(free_port()))
    with pytest.raises(RelayError) as caught:
        await pool.relay("default", SELLER, [BUYER], message())
    assert caught.value.code == 451
    assert caught.value.temporary


async def test_partial_and_total_recipient_refusal() -> None:
    """Some refused: result lists them; all refused: RelayError, a 4xx winning over a 5xx."""
    handler = CaptureHandler(refuse={"gone@x.example": "550 5.1.1 no such user", "busy@x.example": "450 4.2.1 busy"})
    server = await serve(handler)
    pool = UpstreamPool(pool_config(port_of(server)))
    result = await pool.relay("default", SELLER, [BUYER, "gone@x.example"], message())
    assert result.refused == {"gone@x.example": (550, "5.1.1 no such user")}
    assert handler.messages[-1].rcpt_tos == [BUYER]
    with pytest.raises(RelayError) as caught:
        await pool.relay("default", SELLER, ["gone@x.example", "busy@x.example"], message())
    assert caught.value.code == 450
    # The connection survived the refusals and is reused.
    await pool.relay("default", SELLER, [BUYER], message())
    assert len(handler.peers) == 1
    await pool.close()
    server.close()


def test_usable_from_successive_event_loops(tmp_path: Path) -> None:
    """A pool created outside any loop works in one asyncio.run after another (closed in each)."""
    sink = SmtpSink().start()
    try:
        pool = UpstreamPool(pool_config(sink.port))

        async def send() -> None:
            await pool.relay("default", SELLER, [BUYER], message())
            await pool.close()

        asyncio.run(send())
        asyncio.run(send())
        assert len(sink.messages()) == 2
    finally:
        sink.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, ca_file


async def test_starttls_and_auth_to_upstream(tls_files: tuple[ssl.SSLContext, Path]) -> None:
    """STARTTLS verified against a private CA, then AUTH, then the message."""
    server_ctx, ca_file = tls_files
    seen: list[bytes] = []

    def authenticator(server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append(data.login)
        return AuthResult(success=data.login == b"gw" and data.password == b"s3cret", handled=False)

    handler = CaptureHandler()
    server = await serve(
        handler, tls_context=server_ctx, require_starttls=True, authenticator=authenticator, auth_required=True
    )
    config = pool_config(port_of(server), tls="starttls", ca_file=str(ca_file), username="gw", password="s3cret")
    pool = UpstreamPool(config)
    await pool.relay("default", SELLER, [BUYER], message())
    await pool.close()
    server.close()
    assert seen == [b"gw"]
    assert len(handler.messages) == 1


async def test_upstream_auth_failure_is_451(tls_files: tuple[ssl.SSLContext, Path]) -> None:
    """Wrong upstream credentials are our problem, temporary for the sender: 451."""
    server_ctx, ca_file = tls_files
    handler = CaptureHandler()
    server = await serve(
        handler,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=lambda *a: AuthResult(success=False, handled=False),
        auth_required=True,
    )
    config = pool_config(port_of(server), tls="starttls", ca_file=str(ca_file), username="gw", password="bad")
    pool = UpstreamPool(config)
    with pytest.raises(RelayError) as caught:
        await pool.relay("default", SELLER, [BUYER], message())
    assert caught.value.code == 451
    await pool.close()
    server.close()
    assert handler.messages == []


async def test_untrusted_certificate_is_refused(tls_files: tuple[ssl.SSLContext, Path]) -> None:
    """verify_tls: a certificate from an unknown CA fails the relay with 451 (nothing sent)."""
    server_ctx, _ = tls_files
    handler = CaptureHandler()
    server = await serve(handler, tls_context=server_ctx, require_starttls=True)
    pool = UpstreamPool(pool_config(port_of(server), tls="starttls"))
    with pytest.raises(RelayError) as caught:
        await pool.relay("default", SELLER, [BUYER], message())
    assert caught.value.code == 451
    await pool.close()
    server.close()
    assert handler.messages == []


async def test_implicit_tls(tls_files: tuple[ssl.SSLContext, Path]) -> None:
    """An upstream with tls = "implicit" is spoken to in SMTPS from the first byte."""
    server_ctx, ca_file = tls_files
    handler = CaptureHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="hop.test", loop=loop), "127.0.0.1", 0, ssl=server_ctx
    )
    pool = UpstreamPool(pool_config(port_of(server), tls="implicit", ca_file=str(ca_file)))
    await pool.relay("default", SELLER, [BUYER], message())
    await pool.close()
    server.close()
    assert len(handler.messages) == 1


# --- Postfix smtp-sink fault injection ----------------------------------------------

SINK_FAULTS = {
    "5xx-at-data": (("-f", "data"), 500),
    "4xx-at-rcpt": (("-r", "rcpt"), 450),
    "disconnect-at-data": (("-q", "data"), 451),
    "421-at-data": (("-Q", "data"), 421),
}


@pytest.mark.postfix
@pytest.mark.parametrize(("flags", "code"), list(SINK_FAULTS.values()), ids=list(SINK_FAULTS))
async def test_smtp_sink_faults(tmp_path: Path, flags: tuple[str, ...], code: int) -> None:
    """Each injected fault becomes a RelayError with the right code, and nothing is kept."""
    sink = SmtpSink(*flags).start()
    try:
        pool = UpstreamPool(pool_config(sink.port))
        with pytest.raises(RelayError) as caught:
            await pool.relay("default", SELLER, [BUYER], message())
        await pool.close()
    finally:
        sink.stop()
    assert caught.value.code == code


@pytest.mark.postfix
async def test_smtp_sink_slow_reply_times_out(tmp_path: Path) -> None:
    """A next hop slower than the upstream timeout (-w) is a 451."""
    sink = SmtpSink("-w", "3").start()
    try:
        pool = UpstreamPool(pool_config(sink.port, timeout=0.5))
        with pytest.raises(RelayError) as caught:
            await pool.relay("default", SELLER, [BUYER], message())
        await pool.close()
    finally:
        sink.stop()
    assert caught.value.code == 451


@pytest.mark.postfix
async def test_smtp_sink_keeps_exact_bytes(tmp_path: Path) -> None:
    """smtp-sink receives the message unchanged (dot-stuffing undone, CRLF kept)."""
    sink = SmtpSink().start()
    data = message(body="line\r\n.starts with a dot\r\n")
    try:
        pool = UpstreamPool(pool_config(sink.port))
        await pool.relay("default", SELLER, [BUYER], data)
        await pool.close()
        dumped = sink.messages()
    finally:
        sink.stop()
    assert len(dumped) == 1
    # smtp-sink writes its own X- headers and Received first, with LF line ends.
    assert data.replace(b"\r\n", b"\n") in dumped[0]
