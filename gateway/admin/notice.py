"""The notice a reviewer's reject sends to the original sender: what was stopped, why, what to change.

It is written for a helpdesk agent who will read it in a ticket, not for a mail
administrator: plain text, no jargon, the rule in words, the offending text
quoted, the reviewer's own reason, and what to write instead.

Deliberately *not* an automatic reply in the RFC 3834 sense: a person decided to
send it, and helpdesks hide auto-submitted mail from agents (Zendesk files
messages carrying ``Auto-Submitted`` or a null sender under "suspended tickets").
So it has a real envelope sender and no ``Auto-Submitted`` header, and it
threads into the original ticket through ``In-Reply-To``/``References``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

from gateway.model import Category, Finding
from gateway.store.records import QuarantineRecord

#: What the agent should change, per category (POLICY.md's categories, in the agent's words).
ADVICE: dict[Category, str] = {
    Category.REVIEW_REMOVAL: (
        "Do not ask the buyer to remove, change or reconsider a review or rating. Solve the problem instead; "
        "for seller feedback only, you may say neutrally that the buyer can update it."
    ),
    Category.REVIEW_INCENTIVE: (
        "Do not offer money, refunds, discounts, gifts or free products in connection with a review. "
        "A refund or replacement must never depend on a review."
    ),
    Category.REVIEW_SENTIMENT: (
        "If you ask for a review, ask every buyer in neutral words: not only happy buyers, not for five stars, "
        "and without asking unhappy buyers to contact you instead of reviewing."
    ),
    Category.REVIEW_REPEAT: "A review or feedback request was already sent for this order. Do not send another one.",
    Category.MARKETING: (
        "Remove promotions, coupons, other products, newsletters and social-media links. "
        "Write only what this order needs."
    ),
    Category.LINK_EXTERNAL: (
        "Remove the link, or link only to the marketplace or to an https page the buyer needs for this order."
    ),
    Category.CONTACT_OFFPLATFORM: (
        "Remove e-mail addresses, phone numbers, messenger handles and invitations to write to you directly. "
        "Keep the conversation in the marketplace's messaging."
    ),
    Category.ATTACHMENT_DISALLOWED: (
        "Attach only invoices, manuals, warranty or legal documents as PDF or images within the size limit; "
        "no archives, programs, scripts, web pages or documents with macros."
    ),
    Category.CONTENT_TRACKING: (
        "Remove tracking pixels, images loaded from the internet and unsubscribe links; send plain text."
    ),
    Category.MESSAGE_REDUNDANT: (
        "Do not send order, shipping or thank-you confirmations: the marketplace sends those itself."
    ),
    Category.TIMING_WINDOW: (
        "This order is outside the marketplace's time window for messages you start. Write only in reply to the buyer."
    ),
    Category.HARASSMENT: "Remove threats, pressure and insults. Write politely and without demands.",
    Category.PII_REQUEST: (
        "Do not ask for personal data the order does not need (date of birth, ID documents, bank details, "
        "a private phone number)."
    ),
    Category.UNSCANNABLE: (
        "The gateway could not read part of the message (for example an encrypted or damaged attachment). "
        "Send it without that part, or as a readable file."
    ),
}

_WIDTH = 76  # keep lines readable in any client and under RFC 5322's 78-character recommendation


@dataclass(frozen=True, slots=True)
class Notice:
    """A ready-to-send notice: envelope and bytes."""

    mail_from: str
    rcpt_to: str
    data: bytes


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, width=_WIDTH, initial_indent=indent, subsequent_indent=indent) if text else ""


def _findings_text(findings: tuple[Finding, ...]) -> list[str]:
    lines: list[str] = []
    for n, f in enumerate(findings, start=1):
        lines.append(_wrap(f"{n}. {f.description or f.rule} (rule {f.rule})", ""))
        if f.evidence:
            where = f" in {f.location}" if f.location else ""
            lines.append(_wrap(f'Found{where}: "{f.evidence}"', "   "))
        lines.append("")
    return lines


def _advice(findings: tuple[Finding, ...]) -> list[str]:
    seen: list[Category] = []
    for f in findings:
        if f.category not in seen:
            seen.append(f.category)
    return [_wrap(ADVICE[c], "- ").replace("\n- ", "\n  ") for c in seen if c in ADVICE]


def _original_message_id(raw: bytes | None) -> str:
    if not raw:
        return ""
    headers = BytesHeaderParser(policy=SMTP).parsebytes(raw)
    value = headers.get("Message-ID")
    return str(value).strip() if value else ""


def body_text(record: QuarantineRecord, reviewer: str, reason: str, sent_at: datetime) -> str:
    """The notice's text: what was not sent, to whom, why, the reviewer's reason, what to change."""
    env = record.envelope
    findings = record.verdict.acting_findings or record.verdict.findings
    lines = [
        "Your message was NOT sent to the buyer.",
        "",
        _wrap(
            "A reviewer stopped a message your helpdesk sent through the mail gateway, because it "
            "breaks the marketplace's messaging rules. The buyer has not received it."
        ),
        "",
        f"Subject:    {record.subject or '(no subject)'}",
        f"To:         {', '.join(env.rcpt_tos)}",
        f"Sent at:    {format_datetime(record.created_at)}",
        f"Reference:  {record.id}",
        "",
        "Why it was stopped:",
        "",
        *_findings_text(findings),
        f"Reviewer's note ({reviewer}):",
        _wrap(reason, "   "),
        "",
    ]
    advice = _advice(findings)
    if advice:
        lines += ["What to change:", *advice, ""]
    lines += [
        _wrap(
            "Please rewrite the message and send it again as a new reply. If you think this is a mistake, "
            f"ask your gateway administrator and quote the reference {record.id}."
        ),
        "",
        f"-- mail gateway, {format_datetime(sent_at)}",
        "",
    ]
    return "\n".join(lines)


def build_notice(
    record: QuarantineRecord, *, reviewer: str, reason: str, from_address: str, sent_at: datetime, raw: bytes | None
) -> Notice:
    """The reject notice for ``record`` to its original envelope sender.

    ``raw`` (the original bytes, when still stored) supplies the Message-ID the notice
    replies to, so the helpdesk files it in the original ticket.
    """
    domain = from_address.rpartition("@")[2] or "localhost"
    # An internationalised sender address (RFC 6531) needs UTF-8 headers; anything else stays 7-bit.
    ascii_only = record.envelope.mail_from.isascii() and from_address.isascii()
    message = EmailMessage(policy=SMTP if ascii_only else SMTPUTF8)
    message["From"] = f"Mail gateway <{from_address}>"
    message["To"] = record.envelope.mail_from
    subject = " ".join((record.subject or "(no subject)").split())
    message["Subject"] = f"Not sent: {subject}"[:200]
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid("notice", domain=domain)
    original = _original_message_id(raw)
    if original:
        message["In-Reply-To"] = original
        message["References"] = original
    message["X-Gateway-Quarantine-Id"] = record.id
    message.set_content(body_text(record, reviewer, reason, sent_at), charset="utf-8", cte="quoted-printable")
    return Notice(mail_from=from_address, rcpt_to=record.envelope.mail_from, data=message.as_bytes())
