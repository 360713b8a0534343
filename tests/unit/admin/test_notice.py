"""The reject notice's text and headers, independent of any SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy

from gateway.admin.notice import ADVICE, body_text, build_notice
from gateway.model import Action, Category, Envelope, Finding, Verdict
from gateway.store.records import QuarantineRecord, QuarantineStatus

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)


def record(subject: str = "Ihre Bestellung", mail_from: str = "support@seller.example") -> QuarantineRecord:
    findings = (
        Finding(
            "contact.offplatform.phone",
            Category.CONTACT_OFFPLATFORM,
            Action.REJECT,
            "Offers a phone number as a way to reach the seller outside the marketplace.",
            "ruf uns an: +49 30 1234567",
            "text/html (hidden)",
            "de",
        ),
        Finding("marketing", Category.MARKETING, Action.REJECT, "Promotes other products.", "10% Rabatt", monitor=True),
    )
    return QuarantineRecord(
        id="Q7K2M9",
        decision_id=1,
        created_at=NOW,
        status=QuarantineStatus.REJECTED,
        envelope=Envelope("Q7K2M9", mail_from, ("buyer7@marketplace.amazon.de",)),
        verdict=Verdict(Action.REJECT, "amazon", findings),
        subject=subject,
    )


def test_body_names_the_message_the_rule_the_evidence_the_reason_and_the_fix() -> None:
    """The text says it was not sent, to whom, which rule with evidence, the reviewer's note and what to change."""
    text = body_text(record(), "alice", "Phone numbers are not allowed on Amazon.", NOW)
    assert text.startswith("Your message was NOT sent to the buyer.")
    assert "Ihre Bestellung" in text
    assert "buyer7@marketplace.amazon.de" in text
    assert "Q7K2M9" in text
    assert "Offers a phone number" in text
    assert "contact.offplatform.phone" in text
    assert 'Found in text/html (hidden): "ruf uns an: +49 30 1234567"' in text
    assert "Reviewer's note (alice):" in text
    assert "Phone numbers are not allowed" in text
    assert ADVICE[Category.CONTACT_OFFPLATFORM].split()[0] in text
    # A monitor-mode finding did not stop the message; the notice does not blame it.
    assert "10% Rabatt" not in text
    assert "Promotes other products" not in text
    assert all(len(line) <= 78 for line in text.splitlines() if "@" not in line and '"' not in line)


def test_every_category_has_advice() -> None:
    """Each category in POLICY.md comes with a sentence telling the agent what to change."""
    assert set(ADVICE) == set(Category)


def test_headers_thread_into_the_ticket_and_are_not_auto_submitted() -> None:
    """The notice replies to the original Message-ID, has a real sender and no Auto-Submitted header."""
    raw = b"Message-ID: <abc@helpdesk.example>\r\nSubject: x\r\n\r\nbody\r\n"
    notice = build_notice(
        record(), reviewer="alice", reason="no", from_address="postmaster@gw.example", sent_at=NOW, raw=raw
    )
    assert (notice.mail_from, notice.rcpt_to) == ("postmaster@gw.example", "support@seller.example")
    msg = message_from_bytes(notice.data, policy=default_policy)
    assert msg["In-Reply-To"] == "<abc@helpdesk.example>" == msg["References"]
    assert msg["Auto-Submitted"] is None
    assert msg["X-Gateway-Quarantine-Id"] == "Q7K2M9"
    assert msg["Message-ID"].endswith("@gw.example>")
    assert msg.get_content_type() == "text/plain"


def test_subject_with_line_breaks_cannot_inject_headers() -> None:
    """A subject carrying CR/LF and a fake header stays one Subject header."""
    notice = build_notice(
        record(subject="Hi\r\nBcc: victim@example.com\r\n"),
        reviewer="a",
        reason="r",
        from_address="p@gw.example",
        sent_at=NOW,
        raw=None,
    )
    msg = message_from_bytes(notice.data, policy=default_policy)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Not sent: Hi Bcc: victim@example.com"


def test_non_ascii_subject_and_body_survive_encoding() -> None:
    """Umlauts and Cyrillic in subject and evidence decode back exactly."""
    notice = build_notice(
        record(subject="Заказ Grüße"),
        reviewer="a",
        reason="Bitte ändern",
        from_address="p@gw.example",
        sent_at=NOW,
        raw=None,
    )
    msg = message_from_bytes(notice.data, policy=default_policy)
    assert msg["Subject"] == "Not sent: Заказ Grüße"
    assert "Bitte ändern" in msg.get_content()
    assert notice.data.isascii()


def test_internationalised_sender_gets_a_utf8_notice() -> None:
    """An SMTPUTF8 sender address (RFC 6531) is addressed as is."""
    notice = build_notice(
        record(mail_from="поддержка@магазин.example"),
        reviewer="a",
        reason="r",
        from_address="p@gw.example",
        sent_at=NOW,
        raw=None,
    )
    assert notice.rcpt_to == "поддержка@магазин.example"
    assert "поддержка@магазин.example".encode() in notice.data
