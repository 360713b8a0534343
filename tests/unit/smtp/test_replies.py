"""The reply catalogue: exact codes, one ASCII line, evidence folded and truncated."""

from __future__ import annotations

import pytest

from gateway.model import Action, Category, Finding
from gateway.pipeline_types import RelayError
from gateway.smtp import replies
from gateway.smtp.replies import ascii_fold, with_enhanced_code


def finding(evidence: str, description: str = "Do not ask buyers to remove or change a review") -> Finding:
    return Finding(
        rule="review.removal",
        category=Category.REVIEW_REMOVAL,
        action=Action.REJECT,
        description=description,
        evidence=evidence,
    )


def test_reject_reply_names_rule_reason_and_evidence() -> None:
    """A reject is 550 5.7.1 with [rule.id], the description and the quoted evidence."""
    reply = replies.rejected(finding("please delete your review"))
    assert str(reply) == (
        '550 5.7.1 [review.removal] Do not ask buyers to remove or change a review: "please delete your review"'
    )


def test_reject_reply_stays_one_line_under_512_octets() -> None:
    """Long evidence with line breaks is truncated to one line within RFC 5321's 512 octets."""
    reply = str(replies.rejected(finding("bitte\r\nlöschen " * 200)))
    assert len(reply.encode("ascii")) + 2 <= 512
    assert "\r" not in reply
    assert "\n" not in reply
    assert reply.startswith("550 5.7.1 [review.removal] Do not ask buyers")
    assert reply.endswith(('..."', "..."))


def test_reject_reply_keeps_rule_when_description_is_huge() -> None:
    """Even a very long description leaves the rule id and room for evidence."""
    reply = str(replies.rejected(finding("x", description="word " * 300)))
    assert len(reply) <= 510
    assert reply.startswith("550 5.7.1 [review.removal]")


def test_reject_without_finding_is_still_550() -> None:
    """A REJECT verdict without an acting finding still answers 550 5.7.1."""
    assert str(replies.rejected(None)).startswith("550 5.7.1 ")


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("löschen Sie Ihre Bewertung", "loschen Sie Ihre Bewertung"),
        ("Straße", "Strasse"),
        ("usuń opinię", "usun opinie"),
        ("удалите отзыв", "udalite otzyv"),
        ("„quoted“", '"quoted"'),
        ("a\r\nb\x00c", "a b c"),
        ("数字", "??"),
    ],
)
def test_ascii_fold(text: str, folded: str) -> None:
    """Evidence is folded to printable ASCII: accents stripped, Cyrillic transliterated, controls removed."""
    assert ascii_fold(text) == folded


def test_upstream_temporary_failure_becomes_451_with_upstream_status() -> None:
    """An upstream 4xx is 451 for the sender, keeping the upstream's enhanced code and text."""
    reply = replies.upstream_failed(RelayError(450, "4.2.0 mailbox busy"))
    assert reply.code == 451
    assert reply.status == "4.2.0"
    assert "450 mailbox busy" in reply.text


def test_upstream_unreachable_is_451_4_4_1() -> None:
    """A connection failure (RelayError 451 without enhanced code) is 451 4.4.1."""
    reply = replies.upstream_failed(RelayError(451, "cannot connect to next hop default: refused"))
    assert (reply.code, reply.status) == (451, "4.4.1")


def test_upstream_permanent_failure_is_passed_back() -> None:
    """An upstream 5xx keeps its code and enhanced status."""
    reply = replies.upstream_failed(RelayError(554, "5.7.1 sender not registered"))
    assert (reply.code, reply.status) == (554, "5.7.1")
    assert "sender not registered" in reply.text


def test_upstream_permanent_failure_without_enhanced_code() -> None:
    """An upstream 5xx without an enhanced code gets 5.0.0, never a 2xx or 4xx."""
    reply = replies.upstream_failed(RelayError(550, "no"))
    assert (reply.code, reply.status) == (550, "5.0.0")


@pytest.mark.parametrize(
    ("plain", "enhanced"),
    [
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        ("500 Command line too long", "500 5.5.6 Command line too long"),
        ("501 Syntax: MAIL FROM: <address>", "501 5.5.4 Syntax: MAIL FROM: <address>"),
        ("553 5.1.3 Error: malformed address", "553 5.1.3 Error: malformed address"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("250 OK", "250 2.0.0 OK"),
        ("220 gw ESMTP", "220 gw ESMTP"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("250-SIZE 1000", "250-SIZE 1000"),
        ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),
    ],
)
def test_with_enhanced_code(plain: str, enhanced: str) -> None:
    """Plain aiosmtpd replies get an RFC 3463 code; exempt and already-coded ones are unchanged."""
    assert with_enhanced_code(plain) == enhanced


def test_relayed_reply_quotes_next_hop() -> None:
    """250 names our queue id and the next hop's own reply for tracing."""
    reply = str(replies.relayed("Q1", "250 2.0.0 Ok: queued as 4F2"))
    assert reply == "250 2.0.0 Ok: queued as Q1 (next hop: 250 2.0.0 Ok: queued as 4F2)"
