"""Helpers for review-service tests: a real capturing next hop, a loopback relay, small fakes.

- :class:`CaptureServer` is a real aiosmtpd server on a free loopback port, in the
  test's own event loop, that keeps what it receives and can be told to fail.
- :class:`LoopbackRelay` is a few lines of aiosmtplib implementing the ``Relay``
  protocol, for tests that run before (or without) the real upstream pool.
- :class:`FakeParser` and :class:`FakePolicy` are small stand-ins beside the
  Parser/Policy seams: enough structure for a rescan to mean something.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP as SMTPServer  # noqa: N811 (aiosmtpd's class name)
from aiosmtpd.smtp import Envelope as ServerEnvelope
from aiosmtpd.smtp import Session

from gateway.config import Config, parse_config
from gateway.mime.types import OrderId, ParsedMessage, TextPart, TextSource
from gateway.model import Action, Category, Finding, Route, Signal, Verdict
from gateway.pipeline_types import PolicyNeeds, RelayError, RelayResult
from gateway.state import State


@dataclass
class Received:
    """One message the capture server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class CaptureServer:
    """A real SMTP next hop on 127.0.0.1 that records messages; set ``fail_data`` to refuse DATA."""

    received: list[Received] = field(default_factory=list)
    fail_data: str | None = None
    refuse_rcpt: set[str] = field(default_factory=set)
    data_delay: float = 0.0
    port: int = 0
    _server: asyncio.Server | None = None

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: ServerEnvelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: ServerEnvelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.fail_data:
            return self.fail_data
        assert isinstance(envelope.content, bytes)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return f"250 2.0.0 Ok: queued as C{len(self.received)}"

    async def start(self) -> CaptureServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTPServer(self, hostname="capture.test", enable_SMTPUTF8=True), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class LoopbackRelay:
    """A ``Relay`` that opens one plain aiosmtplib connection per message to named loopback ports."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    async def relay(self, upstream: str, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> RelayResult:
        port = self.ports[upstream]
        try:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10) as smtp:
                errors, reply = await smtp.sendmail(mail_from, list(rcpt_tos), data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise RelayError(first.code, first.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise RelayError(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayError(451, f"upstream unreachable: {exc}") from exc
        return RelayResult(reply=f"250 {reply}", refused={r: (e.code, e.message) for r, e in errors.items()})


_ORDER = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")


class FakeParser:
    """Subject and plain-text body with the stdlib parser, Amazon order ids by pattern."""

    async def parse(self, raw: bytes) -> ParsedMessage:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body_part = msg.get_body(("plain",)) if isinstance(msg, email.message.EmailMessage) else None
        body = body_part.get_content() if body_part is not None else ""
        subject = str(msg.get("Subject", ""))
        texts = (TextPart(subject, TextSource.SUBJECT), TextPart(body, TextSource.PLAIN, part="1"))
        orders = tuple(OrderId("amazon", m) for m in dict.fromkeys(_ORDER.findall(subject + "\n" + body)))
        return ParsedMessage(
            subject=subject,
            from_addr=str(msg.get("From", "")),
            message_id=str(msg.get("Message-ID", "")),
            in_reply_to=str(msg.get("In-Reply-To", "")),
            is_reply=bool(msg.get("In-Reply-To")),
            texts=texts,
            order_ids=orders,
            size=len(raw),
        )


@dataclass
class FakePolicy:
    """Quarantines text containing any of ``words``; rejects a second review request per order."""

    words: tuple[str, ...] = ("review",)
    upstream: str = "default"

    def route(self, recipients: Sequence[str]) -> Route:
        is_amazon = all(".amazon." in r for r in recipients)
        return Route(
            profile="amazon" if is_amazon else "default",
            upstream=self.upstream,
            recipients=tuple(recipients),
            is_marketplace=is_amazon,
        )

    def evaluate(self, parsed: ParsedMessage, route: Route, state: State) -> Verdict:
        findings: list[Finding] = []
        text = " ".join(t.text for t in parsed.texts)
        orders = tuple(o.value for o in parsed.order_ids)
        for word in self.words:
            if word in text.lower():
                findings.append(
                    Finding(
                        rule="review.removal",
                        category=Category.REVIEW_REMOVAL,
                        action=Action.QUARANTINE,
                        description="Asks the buyer to remove or change a review.",
                        evidence=word,
                        location="text/plain",
                        language="en",
                    )
                )
        for order in orders:
            if state.review_requested(order) is not None:
                findings.append(
                    Finding(
                        rule="review.repeat",
                        category=Category.REVIEW_REPEAT,
                        action=Action.REJECT,
                        description="A review request was already sent for this order.",
                        evidence=order,
                    )
                )
        return Verdict(
            action=Action.most_severe([f.action for f in findings]),
            profile=route.profile,
            findings=tuple(findings),
            signals=frozenset({Signal.REVIEW_REQUEST}) if "review" in text.lower() else frozenset(),
            order_ids=orders,
            buyer=route.buyer,
        )

    def needs(self, profile: str) -> PolicyNeeds:
        """Content and per-order state; no per-buyer history (no cap)."""
        return PolicyNeeds()


def make_config(tmp_path: Path, database_url: str, ports: dict[str, int], **extra: Any) -> Config:
    """A configuration whose upstreams are the given loopback ports (plain SMTP)."""
    raw: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "upstreams": {name: {"host": "127.0.0.1", "port": port, "tls": "none"} for name, port in ports.items()},
        "store": {"database_url": database_url},
        "notices": {
            "from_address": "postmaster@gateway.test",
            "upstream": "notices" if "notices" in ports else "default",
        },
        **extra,
    }
    return parse_config(raw, "test", environ={})
