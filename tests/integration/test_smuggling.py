"""SMTP smuggling and bad pipelining over a real connection: each variant refused or normalised."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import GatewayFactory, Tls
from tests.support.client import RawClient
from tests.support.messages import BUYER, SELLER
from tests.support.servers import CaptureHop, RunningGateway

HEAD = f"From: <{SELLER}>\r\nTo: <{BUYER}>\r\nSubject: hello\r\n\r\n".encode()
SMUGGLED = (
    f"MAIL FROM:<{SELLER}>\r\nRCPT TO:<victim@marketplace.amazon.de>\r\nDATA\r\n"
    f"From: <ceo@seller.example>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n"
).encode()

VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "lf-dot-cr": b"\n.\r",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-crlf": b"\r.\r\n",
    "nul-before-dot": b"\r\n\x00.\r\n",
    "nul-after-dot": b"\r\n.\x00\r\n",
}


def open_data(client: RawClient) -> None:
    assert client.command("EHLO attacker.test").startswith("250")
    assert client.command(f"MAIL FROM:<{SELLER}>").startswith("250")
    assert client.command(f"RCPT TO:<{BUYER}>").startswith("250")
    assert client.command("DATA").startswith("354")


@pytest.mark.parametrize("ending", list(VARIANTS.values()), ids=list(VARIANTS))
def test_smuggling_variant_refused(gateway: RunningGateway, capture: CaptureHop, ending: bytes) -> None:
    """A hidden end-of-data followed by a second transaction: one refusal, nothing relayed at all."""
    with RawClient(gateway.host, gateway.port) as client:
        open_data(client)
        client.send(HEAD + b"first message" + ending + SMUGGLED + b".\r\n")
        reply = client.reply()
        status = "5.6.0" if b"\x00" in ending else "5.5.2"
        assert reply.startswith(f"550 {status} ")
        assert client.command("NOOP").startswith("250")  # no smuggled commands were executed
    assert capture.messages == []


def test_bare_lf_elsewhere_is_normalised(gateway: RunningGateway, capture: CaptureHop) -> None:
    """Bare LF line ends that do not touch a dot line are normalised to CRLF and relayed."""
    with RawClient(gateway.host, gateway.port) as client:
        open_data(client)
        client.send(HEAD.replace(b"\r\n", b"\n") + b"line one\nline two\r\n.\r\n")
        assert client.reply().startswith("250 ")
    [captured] = capture.messages
    assert captured.data.endswith(HEAD + b"line one\r\nline two\r\n")


def test_commands_pipelined_after_ehlo_refused(gateway: RunningGateway, capture: CaptureHop) -> None:
    """EHLO must be last in a group (RFC 2920 3.1): input after it is 554 5.5.0 and disconnect."""
    with RawClient(gateway.host, gateway.port) as client:
        client.send(f"EHLO attacker.test\r\nMAIL FROM:<{SELLER}>\r\n".encode())
        assert client.reply() == "554 5.5.0 Error: SMTP protocol synchronization (command sent before the reply)"
        assert client.closed()


def test_content_sent_before_354_refused(gateway: RunningGateway, capture: CaptureHop) -> None:
    """Message content sent with DATA, before the 354 go-ahead, is bad pipelining."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("EHLO attacker.test")
        client.command(f"MAIL FROM:<{SELLER}>")
        client.command(f"RCPT TO:<{BUYER}>")
        client.send(b"DATA\r\n" + HEAD + b"body\r\n.\r\n")
        assert client.reply().startswith("554 5.5.0")
        assert client.closed()
    assert capture.messages == []


def test_pipelining_without_ehlo_refused(gateway: RunningGateway) -> None:
    """A HELO client was not offered PIPELINING: any command ahead of a reply is refused."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("HELO old.client")
        client.send(f"MAIL FROM:<{SELLER}>\r\nRCPT TO:<{BUYER}>\r\n".encode())
        assert client.reply().startswith("554 5.5.0")


def test_talking_before_the_greeting_refused(gateway_factory: GatewayFactory) -> None:
    """With greet_pause, a client that sends before the 220 greeting is refused."""
    gw = gateway_factory(server={"greet_pause": 0.3})
    with RawClient(gw.host, gw.port, read_greeting=False) as client:
        client.send(b"EHLO eager.client\r\n")
        assert client.reply().startswith("554 5.5.0")
        assert client.closed()
    with RawClient(gw.host, gw.port) as polite:
        assert polite.greeting.startswith("220 gw.test ESMTP")


def test_legitimate_pipelining_accepted(gateway: RunningGateway, capture: CaptureHop) -> None:
    """MAIL, RCPT and DATA in one group (RFC 2920) are fine; so is QUIT right after the final dot."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("EHLO helpdesk.test")
        client.send(f"MAIL FROM:<{SELLER}>\r\nRCPT TO:<{BUYER}>\r\nDATA\r\n".encode())
        assert client.reply().startswith("250 2.1.0")
        assert client.reply().startswith("250 2.1.5")
        assert client.reply().startswith("354")
        client.send(HEAD + b"pipelined\r\n.\r\nQUIT\r\n")
        assert client.reply().startswith("250 2.0.0 Ok: queued as")
        assert client.reply().startswith("221")
    assert len(capture.messages) == 1


def test_starttls_with_injected_command_refused(gateway_factory: GatewayFactory, tls: Tls) -> None:
    """Plaintext sent after STARTTLS before the TLS handshake (CVE-2011-0411 style) is refused."""
    gw = gateway_factory(server={"tls_cert": str(tls.cert), "tls_key": str(tls.key)})
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO attacker.test")
        client.send(b"STARTTLS\r\nRSET\r\n")
        assert client.reply().startswith("554 5.5.0")
        time.sleep(0.05)
        assert client.closed()
