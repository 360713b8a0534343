"""Not an open relay: accounts by network or AUTH over TLS, and their authorised senders."""

from __future__ import annotations

import base64
import smtplib

import pytest

from gateway.smtp.auth import hash_password
from tests.integration.conftest import GatewayFactory, Tls
from tests.support.client import RawClient, send, transact
from tests.support.messages import SELLER, message
from tests.support.servers import CaptureHop, RunningGateway

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


def test_unknown_client_is_refused_530(gateway_factory: GatewayFactory, capture: CaptureHop) -> None:
    """A client neither from an account network nor authenticated gets 530 5.7.0 at MAIL."""
    gw = gateway_factory(accounts=[{"name": "office", "networks": ["10.0.0.0/8"], "senders": ["@seller.example"]}])
    code, text = send(gw.host, gw.port)
    assert (code, text) == (530, "5.7.0 Authentication required")
    assert capture.messages == []


def test_envelope_sender_must_belong_to_account(gateway: RunningGateway, capture: CaptureHop) -> None:
    """MAIL FROM outside the account's senders: 550 5.7.1 naming the account and what it may use."""
    code, text = send(gateway.host, gateway.port, sender="ceo@other.example")
    assert code == 550
    assert text == (
        "5.7.1 Envelope sender ceo@other.example is not an authorised sender of account 'helpdesk'; "
        "allowed: @seller.example"
    )
    assert capture.messages == []


def test_null_sender_is_refused_for_accounts(gateway: RunningGateway) -> None:
    """The null reverse path is not one of the account's senders."""
    with RawClient(gateway.host, gateway.port) as client:
        client.command("EHLO helpdesk.test")
        assert client.command("MAIL FROM:<>").startswith("550 5.7.1 Envelope sender <> is not an authorised")


def test_header_from_must_belong_to_account(gateway: RunningGateway, capture: CaptureHop) -> None:
    """A From header outside the account's senders: 550 5.7.1, even if MAIL FROM is fine."""
    code, text = send(gateway.host, gateway.port, message(sender="spoof@other.example"))
    assert code == 550
    assert text.startswith("5.7.1 From header spoof@other.example is not an authorised sender of account 'helpdesk'")
    assert capture.messages == []


def auth_gateway(gateway_factory: GatewayFactory, tls: Tls, password_hash: str, **server: object) -> RunningGateway:
    return gateway_factory(
        server={"tls_cert": str(tls.cert), "tls_key": str(tls.key), **server},
        accounts=[{"name": "zendesk", "password_hash": password_hash, "senders": [SELLER]}],
    )


def test_auth_only_offered_over_tls(gateway_factory: GatewayFactory, tls: Tls, password_hash: str) -> None:
    """Before STARTTLS, AUTH is neither advertised nor accepted (538 5.7.11); after it, it is."""
    gw = auth_gateway(gateway_factory, tls, password_hash)
    with smtplib.SMTP(gw.host, gw.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0zendesk\0{PASSWORD}".encode()).decode())
        assert code == 538
        assert text.startswith(b"5.7.11")
        client.starttls(context=tls.client)
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_over_starttls_relays(
    gateway_factory: GatewayFactory, capture: CaptureHop, tls: Tls, password_hash: str, mechanism: str
) -> None:
    """AUTH PLAIN/LOGIN over STARTTLS with the argon2-hashed password relays; the trace says ESMTPSA."""
    gw = auth_gateway(gateway_factory, tls, password_hash)
    with smtplib.SMTP(gw.host, gw.port) as client:
        client.starttls(context=tls.client)
        client.ehlo()
        client.user, client.password = "zendesk", PASSWORD
        auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        code, text = client.auth(mechanism, auth, initial_response_ok=mechanism == "PLAIN")
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        assert transact(client)[0] == 250
    [captured] = capture.messages
    assert b"with ESMTPSA id" in captured.data.split(b"\r\n\r\n")[0]


def test_unauthenticated_over_tls_still_530(gateway_factory: GatewayFactory, tls: Tls, password_hash: str) -> None:
    """TLS alone does not make a client an account."""
    gw = auth_gateway(gateway_factory, tls, password_hash)
    with smtplib.SMTP(gw.host, gw.port) as client:
        client.starttls(context=tls.client)
        assert transact(client)[0] == 530


def test_wrong_password_535_then_421_after_three(gateway_factory: GatewayFactory, tls: Tls, password_hash: str) -> None:
    """A wrong password is 535 5.7.8; the third failure closes the connection with 421 4.7.0."""
    gw = auth_gateway(gateway_factory, tls, password_hash)
    with smtplib.SMTP(gw.host, gw.port) as client:
        client.starttls(context=tls.client)
        client.ehlo()
        bad = "PLAIN " + base64.b64encode(b"\0zendesk\0wrong").decode()
        assert client.docmd("AUTH", bad) == (535, b"5.7.8 Authentication credentials invalid")
        assert client.docmd("AUTH", bad)[0] == 535
        code, text = client.docmd("AUTH", bad)
        assert code == 421
        assert text.startswith(b"4.7.0")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_require_starttls(gateway_factory: GatewayFactory, tls: Tls, password_hash: str) -> None:
    """With require_starttls, MAIL before STARTTLS is 530 5.7.0."""
    gw = auth_gateway(gateway_factory, tls, password_hash, require_starttls=True)
    with RawClient(gw.host, gw.port) as client:
        client.command("EHLO helpdesk.test")
        assert client.command(f"MAIL FROM:<{SELLER}>").startswith("530 5.7.0")


def test_network_account_after_starttls(gateway_factory: GatewayFactory, capture: CaptureHop, tls: Tls) -> None:
    """STARTTLS resets the session (RFC 3207 4.2), but the network account is derived again from the address."""
    gw = gateway_factory(server={"tls_cert": str(tls.cert), "tls_key": str(tls.key)})
    with smtplib.SMTP(gw.host, gw.port) as client:
        client.starttls(context=tls.client)
        assert transact(client)[0] == 250
    [captured] = capture.messages
    assert b"with ESMTPS id" in captured.data.split(b"\r\n\r\n")[0]
