"""Limits, each with its reply: size, recipients, connections, timeouts, line length."""

from __future__ import annotations

import smtplib
import time

from tests.integration.conftest import GatewayFactory
from tests.support.client import RawClient, send
from tests.support.fakes import FakePolicy
from tests.support.messages import BUYER, SELLER, message
from tests.support.servers import CaptureHop, RunningGateway


def test_size_is_advertised(gateway: RunningGateway) -> None:
    """EHLO announces SIZE (RFC 1870), PIPELINING and ENHANCEDSTATUSCODES."""
    with smtplib.SMTP(gateway.host, gateway.port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == str(25 * 1024 * 1024)
        assert client.has_extn("pipelining")
        assert client.has_extn("enhancedstatuscodes")


def test_declared_size_over_server_limit_552(gateway: RunningGateway) -> None:
    """MAIL FROM SIZE= above the server's limit is 552 5.3.4."""
    code, text = send(gateway.host, gateway.port, mail_options=(f"SIZE={26 * 1024 * 1024}",))
    assert (code, text[:5]) == (552, "5.3.4")


def small_amazon(gateway_factory: GatewayFactory, limit: int = 4096) -> RunningGateway:
    policy = FakePolicy()
    policy.max_size["amazon"] = limit
    return gateway_factory(policy=policy)


def test_declared_size_over_profile_limit_552_at_rcpt(gateway_factory: GatewayFactory) -> None:
    """The route's limit (Amazon: 10 MB; 4 KB here) against MAIL SIZE= is 552 5.3.4 at RCPT."""
    gw = small_amazon(gateway_factory)
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO helpdesk.test")
        assert client.command(f"MAIL FROM:<{SELLER}> SIZE=5000").startswith("250")
        assert client.command(f"RCPT TO:<{BUYER}>") == "552 5.3.4 Message size exceeds the amazon limit of 4096 bytes"
        assert client.command("RCPT TO:<buyer@example.org>").startswith("250")  # default profile: no limit


def test_actual_size_over_profile_limit_552_at_data(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """A message bigger than the route's limit, without SIZE=, is 552 5.3.4 after DATA."""
    gw = small_amazon(gateway_factory)
    code, text = send(gw.host, gw.port, message(body="x" * 70 + "\r\n" * 1 + ("y" * 70 + "\r\n") * 80))
    assert code == 552
    assert text == "5.3.4 Message size exceeds the amazon limit of 4096 bytes"
    assert capture.messages == []


def test_actual_size_over_server_limit_552(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """A message bigger than server.max_message_size is drained and answered 552 5.3.4."""
    gw = gateway_factory(server={"max_message_size": 2048})
    code, text = send(gw.host, gw.port, message(body=("z" * 70 + "\r\n") * 60))
    assert (code, text[:5]) == (552, "5.3.4")
    assert capture.messages == []


def test_too_many_recipients_452(gateway_factory: GatewayFactory) -> None:
    """Recipients beyond max_recipients get 452 4.5.3; the accepted ones proceed."""
    gw = gateway_factory(server={"max_recipients": 2})
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO helpdesk.test")
        client.command(f"MAIL FROM:<{SELLER}>")
        assert client.command("RCPT TO:<a@marketplace.amazon.de>").startswith("250")
        assert client.command("RCPT TO:<b@marketplace.amazon.de>").startswith("250")
        assert client.command("RCPT TO:<c@marketplace.amazon.de>") == (
            "452 4.5.3 Too many recipients, at most 2 per message"
        )


def test_one_marketplace_per_message_452(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A recipient of another profile gets 452 4.5.3; the message goes to the first profile's recipients."""
    with smtplib.SMTP(gateway.host, gateway.port) as client:
        client.ehlo()
        client.mail(SELLER)
        assert client.rcpt(BUYER)[0] == 250
        code, text = client.rcpt("buyer@members.ebay.de")
        assert code == 452
        assert text == b"4.5.3 Send one message per marketplace: this recipient is for ebay, earlier ones for amazon"
        assert client.data(message())[0] == 250
    assert capture.messages[0].rcpt_tos == [BUYER]


def test_total_connection_limit_421(gateway_factory: GatewayFactory) -> None:
    """Beyond max_connections, a new client gets 421 4.7.0 at connect."""
    gw = gateway_factory(server={"max_connections": 2})
    first, second = RawClient(gw.host, gw.port), RawClient(gw.host, gw.port)
    try:
        assert first.greeting.startswith("220")
        assert second.greeting.startswith("220")
        with RawClient(gw.host, gw.port) as third:
            assert third.greeting == "421 4.7.0 gw.test Too many connections in total, try again later"
            assert third.closed()
    finally:
        first.close()
        second.close()
    time.sleep(0.1)
    with RawClient(gw.host, gw.port) as again:  # slots are given back
        assert again.greeting.startswith("220")


def test_per_client_connection_limit_421(gateway_factory: GatewayFactory) -> None:
    """Beyond max_connections_per_client from one address: 421 4.7.0 at connect."""
    gw = gateway_factory(server={"max_connections_per_client": 1})
    with RawClient(gw.host, gw.port) as first, RawClient(gw.host, gw.port) as second:
        assert first.greeting.startswith("220")
        assert second.greeting == "421 4.7.0 gw.test Too many connections from your address, try again later"


def test_command_timeout_421(gateway_factory: GatewayFactory) -> None:
    """A client silent beyond command_timeout gets 421 4.4.2 and is disconnected."""
    gw = gateway_factory(server={"command_timeout": 0.3})
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO helpdesk.test")
        assert client.reply() == "421 4.4.2 gw.test Error: timeout exceeded"
        assert client.closed()


def test_data_timeout_421(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """A DATA phase longer than data_timeout gets 421 4.4.2 even while the client trickles lines."""
    gw = gateway_factory(server={"data_timeout": 0.6, "command_timeout": 5})
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO helpdesk.test")
        client.command(f"MAIL FROM:<{SELLER}>")
        client.command(f"RCPT TO:<{BUYER}>")
        assert client.command("DATA").startswith("354")
        reply = ""
        for _ in range(20):
            try:
                client.send(b"Subject: slow\r\n")
            except OSError:
                break
            time.sleep(0.1)
        client.sock.settimeout(3)
        reply = client.reply()
        assert reply == "421 4.4.2 gw.test Error: timeout exceeded"
    assert capture.messages == []


def test_command_line_too_long_500(gateway: RunningGateway) -> None:
    """A command line over 512 octets (RFC 5321 4.5.3.1.4) is 500 5.5.6; the session continues."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("EHLO helpdesk.test")
        assert client.command("NOOP " + "x" * 600).startswith("500 5.5.6")
        assert client.command("NOOP").startswith("250")


def test_repeated_ehlo_does_not_lift_the_mail_line_limit(gateway: RunningGateway) -> None:
    """MAIL may be 512 + 26 (SIZE) + 10 (SMTPUTF8) octets however often the client says EHLO."""
    with RawClient(gateway.host, gateway.port) as client:
        for _ in range(30):
            assert client.command("EHLO helpdesk.test").startswith("250")
        padding = "x" * (600 - len(f"MAIL FROM:<{SELLER}> ENVID="))
        assert client.command(f"MAIL FROM:<{SELLER}> ENVID={padding}").startswith("500 5.5.6")
        assert client.command(f"MAIL FROM:<{SELLER}>").startswith("250")


def test_data_line_too_long_500(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A text line over 1000 octets (RFC 5321 4.5.3.1.6) is 500 5.5.6 after the final dot."""
    code, text = send(gateway.host, gateway.port, message(body="w" * 1500 + "\r\n"))
    assert (code, text[:5]) == (500, "5.5.6")
    assert capture.messages == []
