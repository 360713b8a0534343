"""Typed data shared by every stage: envelope, route, findings, verdict.

The pipeline is ``parse -> evaluate -> act``. Parsing produces a
:class:`gateway.mime.types.ParsedMessage`; the policy engine turns it into a
:class:`Verdict`; the action stage relays, quarantines or rejects. Everything
that crosses a stage boundary is defined here (or in ``mime/types.py`` for the
parse result) as frozen dataclasses and enums, never as scratch dicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Action(enum.StrEnum):
    """What happens to a message. The only three decision names (see POLICY.md)."""

    PASS = "pass"  # noqa: S105 (a decision name, not a password)
    QUARANTINE = "quarantine"
    REJECT = "reject"

    @property
    def severity(self) -> int:
        """Order used to pick the message's action: the most severe finding wins."""
        return _SEVERITY[self]

    @classmethod
    def most_severe(cls, actions: list[Action] | tuple[Action, ...]) -> Action:
        """Return the most severe action of ``actions`` (``PASS`` when empty)."""
        return max(actions, key=lambda a: a.severity, default=cls.PASS)


_SEVERITY = {Action.PASS: 0, Action.QUARANTINE: 1, Action.REJECT: 2}


class Category(enum.StrEnum):
    """Stable rule categories from POLICY.md; logs, replies and the console use them as-is."""

    REVIEW_REMOVAL = "review.removal"
    REVIEW_INCENTIVE = "review.incentive"
    REVIEW_SENTIMENT = "review.sentiment"
    REVIEW_REPEAT = "review.repeat"
    MARKETING = "marketing"
    LINK_EXTERNAL = "link.external"
    CONTACT_OFFPLATFORM = "contact.offplatform"
    ATTACHMENT_DISALLOWED = "attachment.disallowed"
    CONTENT_TRACKING = "content.tracking"
    MESSAGE_REDUNDANT = "message.redundant"
    TIMING_WINDOW = "timing.window"
    HARASSMENT = "harassment"
    PII_REQUEST = "pii.request"
    UNSCANNABLE = "unscannable"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that hit, with the evidence an agent can act on.

    Findings are kept apart from the decision (rspamd's symbols vs actions):
    every hit is recorded, then the profile decides the message's action.

    Attributes:
        rule: dotted rule id, e.g. ``review.removal`` or ``review.removal.feedback``.
        category: the rule's category.
        action: the action this finding asks for after profile overrides.
        description: the rule's one-line description, written for the agent.
        evidence: the offending text quoted from the original (not normalised) text.
        location: where it was found, e.g. ``text/plain``, ``text/html (hidden)``,
            ``attachment invoice.pdf``, ``subject``.
        language: ISO 639-1 code of the matched lexicon, or ``None`` when the rule
            is language-independent (links, attachments...).
        monitor: the rule (or the whole policy) runs in monitor mode: the finding is
            logged but does not change the message's action.
    """

    rule: str
    category: Category
    action: Action
    description: str
    evidence: str = ""
    location: str = ""
    language: str | None = None
    monitor: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON shape used by ``gateway check --json``, logs and the store."""
        return {
            "rule": self.rule,
            "category": self.category.value,
            "action": self.action.value,
            "language": self.language,
            "evidence": self.evidence,
            "location": self.location,
            "description": self.description,
            "monitor": self.monitor,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Finding:
        """Inverse of :meth:`to_dict` (used when reading the decision log back)."""
        language = data.get("language")
        return cls(
            rule=str(data["rule"]),
            category=Category(str(data["category"])),
            action=Action(str(data["action"])),
            description=str(data.get("description", "")),
            evidence=str(data.get("evidence", "")),
            location=str(data.get("location", "")),
            language=None if language is None else str(language),
            monitor=bool(data.get("monitor", False)),
        )


class Signal(enum.StrEnum):
    """Facts the engine noticed that are not violations but feed per-order state.

    The pipeline records them after the message leaves (e.g. a review request
    was sent for an order, so a second one is a ``review.repeat``).
    """

    REVIEW_REQUEST = "review_request"
    PROACTIVE = "proactive"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's decision for one message: every finding, then the action.

    Attributes:
        action: the message's action (most severe non-monitor finding, after overrides).
        profile: the marketplace profile that decided (``amazon``, ``default``...).
        findings: every rule that hit, including monitor-mode ones.
        signals: facts for per-order state (see :class:`Signal`).
        order_ids: marketplace order ids found in the seller's own text.
        buyer: the buyer key used for per-buyer state (normally the recipient alias).
    """

    action: Action
    profile: str
    findings: tuple[Finding, ...] = ()
    signals: frozenset[Signal] = frozenset()
    order_ids: tuple[str, ...] = ()
    buyer: str | None = None

    @property
    def acting_findings(self) -> tuple[Finding, ...]:
        """Findings that are not in monitor mode, most severe first."""
        acting = [f for f in self.findings if not f.monitor]
        return tuple(sorted(acting, key=lambda f: -f.action.severity))

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of every rule that hit, in the order found (for logs)."""
        return tuple(f.rule for f in self.findings)

    @property
    def primary(self) -> Finding | None:
        """The finding that decided the action (first of the most severe), if any."""
        for finding in self.acting_findings:
            if finding.action is self.action:
                return finding
        return None

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form stored with decisions and quarantined messages."""
        return {
            "action": self.action.value,
            "profile": self.profile,
            "findings": [f.to_dict() for f in self.findings],
            "signals": sorted(s.value for s in self.signals),
            "order_ids": list(self.order_ids),
            "buyer": self.buyer,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Verdict:
        """Inverse of :meth:`to_dict`."""
        findings = data.get("findings") or []
        signals = data.get("signals") or []
        order_ids = data.get("order_ids") or []
        buyer = data.get("buyer")
        assert isinstance(findings, list)
        assert isinstance(signals, list)
        assert isinstance(order_ids, list)
        return cls(
            action=Action(str(data["action"])),
            profile=str(data["profile"]),
            findings=tuple(Finding.from_dict(f) for f in findings),
            signals=frozenset(Signal(str(s)) for s in signals),
            order_ids=tuple(str(o) for o in order_ids),
            buyer=None if buyer is None else str(buyer),
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the SMTP session knows about one message, independent of aiosmtpd.

    Attributes:
        queue_id: our id for the message, logged everywhere and stamped in the trace header.
        mail_from: reverse path from ``MAIL FROM`` (``""`` for the null sender).
        rcpt_tos: accepted recipients, in the order given.
        peer: client address as ``ip`` (no port).
        helo: the client's EHLO/HELO name.
        account: authenticated account or the account its network maps to.
        tls: whether the session was encrypted.
        received_at: when DATA completed (UTC).
        mail_options: the MAIL FROM parameters as given (``SIZE=...``, ``BODY=8BITMIME``).
        authenticated: the account was proven by SMTP AUTH rather than by the client's network.
    """

    queue_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: str = ""
    helo: str = ""
    account: str | None = None
    tls: bool = False
    received_at: datetime | None = None
    mail_options: tuple[str, ...] = field(default=())
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """The way one message takes: which policy profile applies and which upstream relays it.

    Chosen by the recipients' domain (all recipients of a message share one route).

    Attributes:
        profile: marketplace profile id (``amazon``, ``ebay``, ``allegro``, ``bol``,
            ``walmart`` or ``default``).
        upstream: name of the configured upstream that relays it.
        recipients: the envelope recipients (the buyer aliases).
        is_marketplace: ``False`` for the ``default`` profile (mail to a private address).
        max_message_size: the profile's size limit in bytes (Amazon: 10 MB), if any.
    """

    profile: str
    upstream: str = "default"
    recipients: tuple[str, ...] = ()
    is_marketplace: bool = True
    max_message_size: int | None = None

    @property
    def buyer(self) -> str | None:
        """Key for per-buyer state: the first recipient, lowercased."""
        return self.recipients[0].lower() if self.recipients else None


@dataclass(frozen=True, slots=True)
class Decision:
    """The record of one message's fate, written to the decision log and to structlog.

    Never carries the body; ``subject`` is kept so admins can find a message.

    Attributes:
        queue_id: the message's queue id.
        decided_at: when the verdict was reached (UTC).
        envelope: the SMTP envelope.
        verdict: the policy's verdict.
        subject: decoded Subject header.
        size: raw message size in bytes.
        durations_ms: time per stage (``parse``, ``evaluate``, ``act``) in milliseconds.
        outcome: what actually happened: ``relayed``, ``quarantined``, ``rejected``,
            ``failed`` (answered 4xx/5xx because of an error, see ``error``).
        error: the error that made the outcome ``failed``, if any.
        refused: recipients the upstream refused, as ``address -> "code message"``.
    """

    queue_id: str
    decided_at: datetime
    envelope: Envelope
    verdict: Verdict
    subject: str = ""
    size: int = 0
    durations_ms: dict[str, float] = field(default_factory=dict)
    outcome: str = ""
    error: str = ""
    refused: dict[str, str] = field(default_factory=dict)
