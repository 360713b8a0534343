"""Reply semantics over a real connection (DESIGN.md): the exact code of every path, nothing lost."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.integration.conftest import GatewayFactory
from tests.support.client import RawClient, send
from tests.support.fakes import FakeParser, FakePolicy, FakeStore
from tests.support.messages import BUYER, SELLER, message
from tests.support.servers import CaptureHop, RunningGateway, SmtpSink, free_port


def test_pass_is_250_and_arrives_with_trace_header(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A clean message: 250, and the next hop has it byte for byte below our Received header."""
    raw = message()
    code, text = send(gateway.host, gateway.port, raw)
    assert code == 250
    assert re.fullmatch(r"2\.0\.0 Ok: queued as \w+ \(next hop: 250 2\.0\.0 Ok: captured\)", text)
    [captured] = capture.messages
    assert captured.mail_from == SELLER
    assert captured.rcpt_tos == [BUYER]
    assert captured.data.startswith(b"Received: from ")
    assert captured.data.endswith(raw)


def test_250_only_after_the_upstream_accepted(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """The client's 250 comes after the next hop committed (it took 0.5 s to do so)."""
    accepted_at: list[float] = []
    original = capture.handler.handle_DATA

    async def slow_accept(server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.5)
        reply = await original(server, session, envelope)
        accepted_at.append(time.monotonic())
        return reply

    capture.handler.handle_DATA = slow_accept  # type: ignore[method-assign]
    gw = gateway_factory()
    code, _ = send(gw.host, gw.port)
    answered_at = time.monotonic()
    assert code == 250
    assert accepted_at
    assert accepted_at[0] <= answered_at


def test_reject_is_550_with_rule_id(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A rejected message: 550 5.7.1 [rule] reason: "evidence", nothing relayed."""
    code, text = send(gateway.host, gateway.port, message("[reject] 10% off your next order"))
    assert code == 550
    assert text == '5.7.1 [test.reject] Test rule refusing marked messages: "[reject] 10% off your next order"'
    assert capture.messages == []


def test_quarantine_is_250_after_commit(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A held message: 250 once it is in the quarantine, nothing relayed."""
    raw = message("[hold] see https://shop.example")
    code, text = send(gateway.host, gateway.port, raw)
    assert code == 250
    assert text.endswith("held for review")
    [(decision, stored)] = gateway.store.quarantined
    assert stored.endswith(raw)
    assert decision.outcome == "quarantined"
    assert capture.messages == []


def test_exception_is_451_not_500(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """An exception while processing answers 451 4.3.0 (aiosmtpd would say 500)."""
    parser = FakeParser()
    parser.fail = True
    gw = gateway_factory(parser=parser)
    code, text = send(gw.host, gw.port)
    assert (code, text[:5]) == (451, "4.3.0")
    assert capture.messages == []


def test_exception_outside_the_pipeline_is_451(gateway: RunningGateway) -> None:
    """An exception in a handler hook (here routing at RCPT) is 451 4.3.0 via handle_exception, not 500."""
    code, text = send(gateway.host, gateway.port, rcpts=("buyer@crash.example",))
    assert (code, text[:5]) == (451, "4.3.0")


def test_processing_timeout_is_451(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """Processing beyond processing_timeout answers 451 4.4.5."""
    gw = gateway_factory(policy=FakePolicy(slow_seconds=2), server={"processing_timeout": 0.3})
    code, text = send(gw.host, gw.port, message("[slow]"))
    assert (code, text[:5]) == (451, "4.4.5")
    assert capture.messages == []


def test_unreachable_upstream_is_451(gateway_factory: GatewayFactory) -> None:
    """Nothing listens at the upstream: 451 4.4.1."""
    gw = gateway_factory(upstream_port=free_port())
    code, text = send(gw.host, gw.port)
    assert (code, text[:5]) == (451, "4.4.1")


def test_store_failure_is_451(gateway_factory: GatewayFactory) -> None:
    """A quarantine that cannot commit answers 451 4.3.0, never 250."""
    store = FakeStore()
    store.fail_quarantine = True
    gw = gateway_factory(store=store)
    code, text = send(gw.host, gw.port, message("[hold]"))
    assert (code, text[:5]) == (451, "4.3.0")


def test_partial_refusal_gets_250_and_a_dsn(gateway: RunningGateway, capture: CaptureHop) -> None:
    """One recipient refused upstream: 250 for the other, and a DSN for the refused one reaches the sender."""
    gone = "gone@marketplace.amazon.de"
    capture.handler.refuse[gone] = "550 5.1.1 no such buyer"
    code, _ = send(gateway.host, gateway.port, rcpts=(BUYER, gone))
    assert code == 250
    original, dsn = capture.messages
    assert original.rcpt_tos == [BUYER]
    assert dsn.mail_from == "<>"  # aiosmtpd records the null reverse path so
    assert dsn.rcpt_tos == [SELLER]
    assert b"multipart/report" in dsn.data
    assert b"Final-Recipient: rfc822; gone@marketplace.amazon.de" in dsn.data
    gateway.drain()
    [decision] = gateway.store.decisions
    assert decision.refused == {gone: "550 5.1.1 no such buyer"}


# --- Postfix smtp-sink as the next hop ------------------------------------------------

SINK_CASES = {
    "5xx-at-data": (("-f", "data"), 500, "5.3.0"),
    "4xx-at-rcpt": (("-r", "rcpt"), 451, "4.3.0"),
    "disconnect-at-data": (("-q", "data"), 451, "4.4.1"),
    "421-at-data": (("-Q", "data"), 451, "4.0.0"),  # smtp-sink says "421 4.0.0 Server closing connection"
}


@pytest.fixture
def sink_factory() -> Iterator[list[SmtpSink]]:
    sinks: list[SmtpSink] = []
    yield sinks
    for sink in sinks:
        sink.stop()


def start_sink(sinks: list[SmtpSink], *flags: str) -> SmtpSink:
    sink = SmtpSink(*flags).start()
    sinks.append(sink)
    return sink


@pytest.mark.postfix
@pytest.mark.parametrize(("flags", "code", "status"), list(SINK_CASES.values()), ids=list(SINK_CASES))
def test_smtp_sink_faults(
    gateway_factory: GatewayFactory, sink_factory: list[SmtpSink], flags: tuple[str, ...], code: int, status: str
) -> None:
    """smtp-sink fault injection: upstream 5xx passed back as 5xx, everything else 451."""
    sink = start_sink(sink_factory, *flags)
    gw = gateway_factory(upstream_port=sink.port)
    got_code, text = send(gw.host, gw.port)
    assert (got_code, text[:5]) == (code, status)


@pytest.mark.postfix
def test_smtp_sink_slow_upstream_is_451(gateway_factory: GatewayFactory, sink_factory: list[SmtpSink]) -> None:
    """An upstream slower than its timeout (-w) is 451, not a hang and not a 250."""
    sink = start_sink(sink_factory, "-w", "3")
    gw = gateway_factory(
        upstream_port=sink.port,
        upstreams={"default": {"host": "127.0.0.1", "port": sink.port, "tls": "none", "timeout": 0.5}},
    )
    code, _ = send(gw.host, gw.port)
    assert code == 451


@pytest.mark.postfix
@pytest.mark.parametrize(
    "flags",
    [(), ("-r", "rcpt"), ("-f", "data"), ("-q", "data"), ("-Q", "data")],
    ids=["healthy", "4xx-rcpt", "5xx-data", "drop-data", "421-data"],
)
def test_no_accepted_message_is_lost(
    gateway_factory: GatewayFactory, sink_factory: list[SmtpSink], flags: tuple[str, ...]
) -> None:
    """Every message the client saw accepted is at smtp-sink or in the quarantine."""
    sink = start_sink(sink_factory, *flags)
    gw = gateway_factory(upstream_port=sink.port)
    subjects = ["plain one", "[hold] link", "[reject] promo", "plain two", "[crash] bug", "[hold] again"]
    accepted = []
    for i, subject in enumerate(subjects):
        token = f"token-{i}-{subject.split()[-1]}"
        code, _ = send(gw.host, gw.port, message(f"{subject} {token}"))
        if code == 250:
            accepted.append(token)
        else:
            assert code >= 400
    time.sleep(0.2)  # smtp-sink closes its dump file after replying
    delivered = b"".join(sink.messages())
    held = b"".join(raw for _, raw in gw.store.quarantined)
    for token in accepted:
        assert token.encode() in delivered or token.encode() in held, token
    # The held ones are always accepted (quarantine does not depend on the upstream).
    assert {"token-1-link", "token-5-again"} <= set(accepted)
    if not flags:
        assert len(accepted) == 4


def test_help_lists_the_commands(gateway: RunningGateway) -> None:
    """HELP answers with the supported commands, and HELP MAIL with its syntax, through the command guards."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("EHLO helpdesk.test")
        listed = client.command("HELP")
        assert listed.startswith("250 ")
        assert {"DATA", "EHLO", "MAIL", "QUIT", "RCPT"} <= set(listed.split(":", 1)[1].split())
        assert client.command("HELP MAIL").startswith("250 ")
        assert "MAIL FROM: <address>" in client.command("HELP MAIL")
