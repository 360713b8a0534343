"""Delivery status notifications (RFC 3464) for recipients the upstream refused.

A message to several recipients may be accepted upstream for some and refused
for others after the gateway has already committed to one end-of-DATA reply.
The gateway answers 250 (the accepted recipients have the message) and tells
the envelope sender about the others with a ``multipart/report`` DSN, the way
an MTA would, so a refused recipient never silently vanishes.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser

from gateway.model import Envelope

_HUMAN = """\
This is the mail gateway at {host}.

Your message (queue id {queue_id}) was delivered to its other recipients, but
the next hop ({upstream}) refused the recipients below. {advice}

{lines}
"""


def build_dsn(
    *,
    envelope: Envelope,
    refused: Mapping[str, tuple[int, str]],
    original: bytes,
    reporting_host: str,
    upstream: str,
    from_address: str,
    now: datetime | None = None,
) -> bytes:
    """Build the RFC 3464 report for ``refused`` recipients of ``envelope``'s message.

    The third part carries only the original headers (``text/rfc822-headers``):
    enough for the sender to recognise the message without echoing the body.
    """
    now = now or datetime.now(UTC)
    temporary = any(code < 500 for code, _ in refused.values())
    advice = (
        "The gateway does not queue mail: please send the message again to them."
        if temporary
        else "The refusal is permanent."
    )
    lines = "\n".join(f"  <{rcpt}>: {code} {text}" for rcpt, (code, text) in refused.items())

    report = EmailMessage(policy=email.policy.SMTP)
    report["From"] = f"Mail Delivery System <{from_address}>"
    report["To"] = envelope.mail_from
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = email.utils.format_datetime(now)
    report["Message-ID"] = email.utils.make_msgid(domain=reporting_host)
    # RFC 3834 5: an automatic response, so auto-responders do not answer it.
    report["Auto-Submitted"] = "auto-replied"
    report.set_content(
        _HUMAN.format(host=reporting_host, queue_id=envelope.queue_id, upstream=upstream, advice=advice, lines=lines)
    )
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")

    status = EmailMessage(policy=email.policy.SMTP)
    status.set_type("message/delivery-status")
    per_message = Message(policy=email.policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {reporting_host}"
    per_message["X-Gateway-Queue-ID"] = envelope.queue_id
    if envelope.received_at is not None:
        per_message["Arrival-Date"] = email.utils.format_datetime(envelope.received_at)
    blocks: list[Message | str] = [per_message]
    for rcpt, (code, text) in refused.items():
        block = Message(policy=email.policy.SMTP)
        block["Final-Recipient"] = f"rfc822; {rcpt}"
        block["Action"] = "failed"
        block["Status"] = _status(code, text)
        block["Remote-MTA"] = f"dns; {upstream}"
        block["Diagnostic-Code"] = f"smtp; {code} {' '.join(text.split())}"
        blocks.append(block)
    status.set_payload(blocks)
    report.attach(status)

    headers = EmailMessage(policy=email.policy.SMTP)
    headers.set_type("text/rfc822-headers")
    original_headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(original)
    headers.set_payload("".join(f"{name}: {value}\n" for name, value in original_headers.items()))
    report.attach(headers)
    return report.as_bytes(policy=email.policy.SMTP)


def _status(code: int, text: str) -> str:
    """The RFC 3463 status of a refusal: the upstream's own, else derived from the code."""
    first = text.strip().split(" ", 1)[0]
    parts = first.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and first[0] in "45":
        return first
    return "4.0.0" if code < 500 else "5.0.0"
