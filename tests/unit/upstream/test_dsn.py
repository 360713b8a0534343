"""Delivery status notifications for recipients refused upstream (RFC 3464)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from gateway.model import Envelope
from gateway.upstream.dsn import build_dsn
from tests.support.messages import BUYER, SELLER, message


def test_dsn_is_a_multipart_report_per_rfc_3464() -> None:
    """The report has a human part, one delivery-status block per refused recipient, and the headers only."""
    envelope = Envelope(
        queue_id="Q42",
        mail_from=SELLER,
        rcpt_tos=(BUYER, "gone@marketplace.amazon.de"),
        received_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )
    original = message(body="SECRET BODY TEXT\r\n")
    raw = build_dsn(
        envelope=envelope,
        refused={"gone@marketplace.amazon.de": (550, "5.1.1 no such buyer")},
        original=original,
        reporting_host="gw.test",
        upstream="relay.example",
        from_address="postmaster@gw.test",
    )
    report = email.message_from_bytes(raw, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"] == SELLER
    assert report["Auto-Submitted"] == "auto-replied"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert "gone@marketplace.amazon.de" in parts[0].get_content()
    status = raw.decode()
    assert "Final-Recipient: rfc822; gone@marketplace.amazon.de" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such buyer" in status
    assert "Subject: Re: your order" in status
    assert "SECRET BODY TEXT" not in status  # the body is never echoed
    assert BUYER not in status.split("message/delivery-status")[1].split("rfc822-headers")[0]


def test_temporary_refusal_advises_resending() -> None:
    """A 4xx refusal says the gateway does not queue, so the sender should send again."""
    envelope = Envelope(queue_id="Q1", mail_from=SELLER, rcpt_tos=(BUYER, "b@x"))
    raw = build_dsn(
        envelope=envelope,
        refused={"b@x": (452, "mailbox full")},
        original=message(),
        reporting_host="gw.test",
        upstream="relay.example",
        from_address="postmaster@gw.test",
    ).decode()
    assert "Status: 4.0.0" in raw
    assert "send the message again" in raw
