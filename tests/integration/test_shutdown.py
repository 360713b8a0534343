"""Graceful shutdown in one worker: idle sessions get 421 at once, open transactions finish."""

from __future__ import annotations

import threading
import time

from tests.integration.conftest import GatewayFactory
from tests.support.client import RawClient, send
from tests.support.fakes import FakePolicy
from tests.support.messages import message
from tests.support.servers import CaptureHop


def test_in_flight_transaction_finishes_idle_session_gets_421(
    gateway_factory: GatewayFactory, capture: CaptureHop
) -> None:
    """During shutdown an idle session gets 421 4.3.2 at once; a message being processed still gets its 250."""
    gw = gateway_factory(policy=FakePolicy(slow_seconds=0.8), server={"shutdown_grace": 5})
    result: list[tuple[int, str]] = []
    sender = threading.Thread(target=lambda: result.append(send(gw.host, gw.port, message("[slow] in flight"))))
    with RawClient(gw.host, gw.port) as idle:
        idle.command("EHLO idle.client")
        sender.start()
        time.sleep(0.3)  # the slow message is now being evaluated
        stopper = threading.Thread(target=gw.shutdown, kwargs={"grace": 5})
        stopper.start()
        assert idle.reply() == "421 4.3.2 gw.test Service shutting down, try again later"
        assert idle.closed()
        sender.join(10)
        stopper.join(10)
    assert result[0][0] == 250
    assert len(capture.messages) == 1


def test_grace_expiry_answers_421_and_relays_nothing(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """A transaction still running when the grace expires gets 421, not 250, and is not relayed."""
    gw = gateway_factory(policy=FakePolicy(slow_seconds=2), server={"processing_timeout": 10})
    result: list[tuple[int, str]] = []

    def slow_send() -> None:
        try:
            result.append(send(gw.host, gw.port, message("[slow] too slow")))
        except Exception as exc:  # smtplib raises when the server closes after the 421
            result.append((-1, repr(exc)))

    sender = threading.Thread(target=slow_send)
    sender.start()
    time.sleep(0.3)
    started = time.monotonic()
    gw.shutdown(grace=0.3)
    assert time.monotonic() - started < 5
    sender.join(10)
    assert result
    assert result[0][0] in (421, -1)
    time.sleep(2)  # the abandoned evaluation finishes; it must not be relayed
    assert capture.messages == []


def test_no_new_connections_after_shutdown(gateway_factory: GatewayFactory) -> None:
    """Once shut down, the port no longer accepts connections."""
    gw = gateway_factory()
    gw.shutdown(grace=0.5)
    try:
        with RawClient(gw.host, gw.port) as client:
            assert not client.greeting.startswith("220")
    except OSError:
        pass
