"""Small fakes beside the Parser, Policy and Store seams, for SMTP-core tests.

They are deliberately simple and driven by markers in the Subject, so a test
states its scenario in the message it sends: ``[reject]``, ``[hold]``,
``[crash]``, ``[slow]``, ``[review]``, ``[proactive]``; routing a recipient at
``crash.example`` raises. The real
implementations (``gateway.mime``, ``gateway.policy``, ``gateway.store``) have
their own tests; these exist so the SMTP layer can be tested on its own.
"""

from __future__ import annotations

import email.policy
import re
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from email.parser import BytesParser
from email.utils import getaddresses

from gateway.mime.parse import parse_headers
from gateway.mime.types import OrderId, ParsedMessage, TextPart, TextSource
from gateway.model import Action, Category, Decision, Finding, Route, Signal, Verdict
from gateway.pipeline_types import PolicyNeeds, RelayError, RelayResult
from gateway.state import MemoryState, State, StateEvent

AMAZON_ORDER = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
TEN_MB = 10 * 1024 * 1024


class FakeParser:
    """Headers and plain text through the stdlib; Amazon-style order ids by regex."""

    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    def parse_headers(self, raw: bytes) -> ParsedMessage:
        return parse_headers(raw)

    async def parse(self, raw: bytes) -> ParsedMessage:
        self.calls += 1
        if self.fail:
            raise RuntimeError("fake parser failure")
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        subject = str(msg.get("Subject", ""))
        froms = getaddresses([str(v) for v in msg.get_all("From", [])])
        tos = getaddresses([str(v) for v in msg.get_all("To", [])])
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        orders = [OrderId("amazon", m.group()) for m in AMAZON_ORDER.finditer(subject + "\n" + text)]
        return ParsedMessage(
            subject=subject,
            from_addr=froms[0][1].lower() if froms else "",
            to_addrs=tuple(a.lower() for _, a in tos),
            headers=tuple((k, str(v)) for k, v in msg.items()),
            texts=(TextPart(subject, TextSource.SUBJECT), TextPart(text, TextSource.PLAIN, part="1")),
            order_ids=tuple(orders),
            size=len(raw),
        )


class FakePolicy:
    """Routes by recipient domain; decides by markers in the Subject; needs everything."""

    def __init__(
        self, *, slow_seconds: float = 2.0, upstreams: dict[str, str] | None = None, needs: PolicyNeeds | None = None
    ) -> None:
        self.slow_seconds = slow_seconds
        self.requirements = needs or PolicyNeeds()
        self.upstreams = upstreams or {}
        self.max_size: dict[str, int | None] = {"amazon": TEN_MB, "ebay": None, "default": None}

    def route(self, recipients: Sequence[str]) -> Route:
        domain = recipients[0].rpartition("@")[2].lower() if recipients else ""
        if any(r.endswith("@crash.example") for r in recipients):
            raise RuntimeError("fake routing failure")
        if domain.startswith("marketplace.amazon."):
            profile = "amazon"
        elif domain.startswith("members.ebay."):
            profile = "ebay"
        else:
            profile = "default"
        return Route(
            profile=profile,
            upstream=self.upstreams.get(profile, "default"),
            recipients=tuple(recipients),
            is_marketplace=profile != "default",
            max_message_size=self.max_size.get(profile),
        )

    def needs(self, profile: str) -> PolicyNeeds:
        return self.requirements

    def evaluate(self, parsed: ParsedMessage, route: Route, state: State) -> Verdict:
        subject = parsed.subject
        if "[crash]" in subject:
            raise RuntimeError("fake policy failure")
        if "[slow]" in subject:
            time.sleep(self.slow_seconds)
        findings: list[Finding] = []
        if "[reject]" in subject:
            findings.append(
                Finding(
                    rule="test.reject",
                    category=Category.MARKETING,
                    action=Action.REJECT,
                    description="Test rule refusing marked messages",
                    evidence=subject,
                    location="subject",
                )
            )
        if "[hold]" in subject:
            findings.append(
                Finding(
                    rule="test.hold",
                    category=Category.LINK_EXTERNAL,
                    action=Action.QUARANTINE,
                    description="Test rule holding marked messages",
                    evidence=subject,
                    location="subject",
                )
            )
        signals = set()
        if "[review]" in subject:
            signals.add(Signal.REVIEW_REQUEST)
        if "[proactive]" in subject:
            signals.add(Signal.PROACTIVE)
        return Verdict(
            action=Action.most_severe([f.action for f in findings]),
            profile=route.profile,
            findings=tuple(findings),
            signals=frozenset(signals),
            order_ids=tuple(o.value for o in parsed.order_ids),
            buyer=route.buyer,
        )


class FakeStore:
    """An in-memory store with switches to make each operation fail."""

    def __init__(self) -> None:
        self.batches = 0
        self.state_reads = 0
        self._lock = threading.Lock()
        self.decisions: list[Decision] = []
        self.quarantined: list[tuple[Decision, bytes]] = []
        self.events: list[StateEvent] = []
        self.fail_quarantine = False
        self.fail_record = False
        self.fail_load = False

    def record_decision(self, decision: Decision) -> None:
        if self.fail_record:
            raise OSError("fake store: disk full")
        with self._lock:
            self.decisions.append(decision)

    def quarantine(self, decision: Decision, raw: bytes) -> str:
        if self.fail_quarantine:
            raise OSError("fake store: cannot commit")
        with self._lock:
            self.quarantined.append((decision, raw))
            self.decisions.append(decision)
            return f"q{len(self.quarantined)}"

    def load_state(self, order_ids: Sequence[str], buyer: str | None, buyer_since: datetime) -> MemoryState:
        self.state_reads += 1
        if self.fail_load:
            raise OSError("fake store: database unavailable")
        with self._lock:
            return MemoryState(e for e in self.events if e.key in order_ids or (e.key == buyer and e.at >= buyer_since))

    def record_batch(self, batch: Sequence[Decision], events: Sequence[StateEvent]) -> None:
        self.batches += 1
        for decision in batch:
            self.record_decision(decision)
        if events:
            self.record_events(events)

    def record_events(self, events: Sequence[StateEvent]) -> None:
        with self._lock:
            self.events.extend(events)


class FakeRelay:
    """Records what would be relayed; can refuse recipients or fail like an upstream."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, tuple[str, ...], bytes]] = []
        self.error: RelayError | None = None
        self.refuse: dict[str, tuple[int, str]] = {}

    async def relay(self, upstream: str, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> RelayResult:
        if self.error is not None and mail_from:
            raise self.error
        self.sent.append((upstream, mail_from, tuple(rcpt_tos), data))
        refused = {r: self.refuse[r] for r in rcpt_tos if r in self.refuse}
        if len(refused) == len(rcpt_tos):
            raise RelayError(*next(iter(refused.values())))
        return RelayResult(reply="250 2.0.0 Ok: queued as UP1", refused=refused)
