"""The shipped Postfix content-filter snippets, run for real: Postfix -> gateway -> Postfix -> next hop."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from tests.integration.conftest import GatewayFactory
from tests.support.messages import BUYER, SELLER, message
from tests.support.postfix import PrivatePostfix, wait_until
from tests.support.servers import CaptureHop, RunningGateway, free_port

pytestmark = pytest.mark.postfix


@pytest.fixture
def sandwich(gateway_factory: GatewayFactory, capture: CaptureHop) -> Iterator[tuple[PrivatePostfix, RunningGateway]]:
    reinject = free_port()
    gateway = gateway_factory(
        upstream_port=reinject,
        accounts=[{"name": "postfix", "networks": ["127.0.0.1/32"], "senders": ["@seller.example"]}],
    )
    postfix = PrivatePostfix(relayhost_port=capture.port, filter_port=gateway.port, reinject_port=reinject)
    postfix.start()
    try:
        yield postfix, gateway
    finally:
        postfix.stop()


def test_after_queue_filter_delivers_passes_and_bounces_rejects(
    sandwich: tuple[PrivatePostfix, RunningGateway], capture: CaptureHop
) -> None:
    """A clean message reaches the next hop through the gateway; a rejected one comes back as a bounce with the rule."""
    postfix, gateway = sandwich
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=30) as client:
        client.sendmail(SELLER, [BUYER], message("tracking number for your order"))
        client.sendmail(SELLER, [BUYER], message("[reject] 10% coupon"))
    assert wait_until(lambda: len(capture.messages) >= 2), postfix.log()
    delivered = [m for m in capture.messages if m.rcpt_tos == [BUYER]]
    bounces = [m for m in capture.messages if m.rcpt_tos == [SELLER]]
    assert len(delivered) == 1
    assert b"tracking number for your order" in delivered[0].data
    assert b"by gw.test (marketplace-mail-gateway)" in delivered[0].data  # passed through the gateway
    assert len(bounces) == 1
    assert b"550 5.7.1 [test.reject]" in bounces[0].data
    gateway.drain()
    assert sorted(d.outcome for d in gateway.store.decisions) == ["rejected", "relayed"]


def test_before_queue_proxy_gives_the_gateway_reply_live(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """With smtpd_proxy_filter, the client sees the gateway's own 550 5.7.1 live, and passes are delivered."""
    reinject = free_port()
    gateway = gateway_factory(
        upstream_port=reinject,
        accounts=[{"name": "postfix", "networks": ["127.0.0.1/32"], "senders": ["@seller.example"]}],
    )
    postfix = PrivatePostfix(
        relayhost_port=capture.port, filter_port=gateway.port, reinject_port=reinject, mode="before-queue"
    )
    postfix.start()
    try:
        with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=30) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail(SELLER, [BUYER], message("[reject] 10% coupon"))
            client.rset()
            client.sendmail(SELLER, [BUYER], message("your invoice"))
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.7.1 [test.reject]")
        assert wait_until(lambda: len(capture.messages) >= 1), postfix.log()
        [delivered] = capture.messages
        assert b"your invoice" in delivered.data
    finally:
        postfix.stop()
