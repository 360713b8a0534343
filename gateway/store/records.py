"""Typed rows the store hands out and the queries it takes.

The pipeline only needs the :class:`gateway.pipeline_types.Store` protocol; the
review service and the consoles read and filter through the types here, so no
scratch dicts cross the store boundary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from gateway.model import Action, Decision, Envelope, Verdict

T = TypeVar("T")


class QuarantineStatus(enum.StrEnum):
    """Where a quarantined message is in the review workflow."""

    HELD = "held"  # waiting for a reviewer
    RELEASING = "releasing"  # claimed by one worker that is relaying it right now
    RELEASED = "released"  # relayed to the next hop
    REJECTED = "rejected"  # refused by a reviewer (the sender may have been notified)
    DELETED = "deleted"  # removed by a reviewer; the raw bytes are gone, the record stays

    @property
    def final(self) -> bool:
        """No further review action applies."""
        return self in (QuarantineStatus.RELEASED, QuarantineStatus.REJECTED, QuarantineStatus.DELETED)


class AuditResult(enum.StrEnum):
    """How an audited action ended."""

    OK = "ok"
    FAILED = "failed"  # tried and failed (upstream refused the release, notice not sent...)
    REFUSED = "refused"  # not attempted: unknown id, wrong state, bad credentials


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who did what to which target, why, when, and how it ended.

    ``id`` is ``None`` until the row is written.
    """

    actor: str
    action: str
    target: str
    at: datetime
    reason: str = ""
    result: AuditResult = AuditResult.OK
    detail: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class RescanInfo:
    """The latest re-evaluation of a held message with the policy of the day."""

    at: datetime
    verdict: Verdict
    by: str


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """A quarantined message as the review surfaces show it (without its raw bytes).

    Attributes:
        id: the quarantine id (the message's queue id, as in the SMTP reply and the logs).
        decision_id: the row of the decision log that quarantined it.
        created_at: when it was quarantined.
        status: see :class:`QuarantineStatus`.
        envelope: the original SMTP envelope (a release uses it unchanged).
        verdict: the verdict that quarantined it, with every finding.
        subject: decoded Subject header.
        size: raw size in bytes.
        status_at, status_by, status_reason: the last review action (when, who, why).
        claimed_until: while ``RELEASING``, when the claim expires and another worker may retry.
        last_error, last_error_at: the last failed release (the upstream's answer).
        upstream_reply: the upstream's reply to the release.
        refused: recipients the upstream refused on release, ``address -> "code message"``.
        notice_status, notice_detail: the reject notice (``sent``/``failed``, and details).
        rescan: the latest re-evaluation, if any.
        has_raw: the raw bytes are still stored (not deleted).
    """

    id: str
    decision_id: int
    created_at: datetime
    status: QuarantineStatus
    envelope: Envelope
    verdict: Verdict
    subject: str = ""
    size: int = 0
    status_at: datetime | None = None
    status_by: str = ""
    status_reason: str = ""
    claimed_until: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    upstream_reply: str = ""
    refused: dict[str, str] = field(default_factory=dict)
    notice_status: str = ""
    notice_detail: str = ""
    rescan: RescanInfo | None = None
    has_raw: bool = True

    @property
    def profile(self) -> str:
        """The marketplace profile that decided."""
        return self.verdict.profile


@dataclass(frozen=True, slots=True)
class QuarantineQuery:
    """Filters for the quarantine list; every field narrows, ``None`` means any.

    ``text`` searches subject, sender and recipients (case-insensitive substring).
    Results are newest first.
    """

    status: QuarantineStatus | None = None
    rule: str | None = None
    category: str | None = None
    language: str | None = None
    account: str | None = None
    profile: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A row of the decision log: the decision as written, with its row id."""

    id: int
    decision: Decision

    @property
    def action(self) -> Action:
        """The verdict's action."""
        return self.decision.verdict.action


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters for the decision log; every field narrows, ``None`` means any. Newest first."""

    action: Action | None = None
    outcome: str | None = None
    rule: str | None = None
    category: str | None = None
    language: str | None = None
    account: str | None = None
    profile: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Count:
    """One bucket of a breakdown: ``key`` and how many decisions fall in it."""

    key: str
    count: int


@dataclass(frozen=True, slots=True)
class DecisionStats:
    """Decision counts over a period, by action, category, language, account, rule and day.

    A decision counts once per category/language/rule it has at least one finding in,
    so those breakdowns do not add up to ``total``. ``by_day`` keys are UTC dates
    (``2025-05-01``); ``by_day_action`` keys are ``"2025-05-01 quarantine"`` and
    ``by_day_category`` keys ``"2025-05-01 review.removal"`` (acting findings, like ``by_category``).
    """

    total: int
    since: datetime | None
    until: datetime | None
    by_action: tuple[Count, ...] = ()
    by_outcome: tuple[Count, ...] = ()
    by_category: tuple[Count, ...] = ()
    by_language: tuple[Count, ...] = ()
    by_account: tuple[Count, ...] = ()
    by_rule: tuple[Count, ...] = ()
    by_day: tuple[Count, ...] = ()
    by_day_action: tuple[Count, ...] = ()
    by_day_category: tuple[Count, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for the audit log; newest first."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the total number matching the filters."""

    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a retention purge removed."""

    before: datetime
    quarantined: int
    decisions: int
    kept_held: int
    #: Per-order/per-buyer state events removed (their own retention, ``store.state_retention_days``).
    state_events: int = 0


class Role(enum.StrEnum):
    """What a console user may do; each role includes the ones before it."""

    VIEWER = "viewer"  # read quarantine, decisions, audit
    REVIEWER = "reviewer"  # also release, reject, delete, rescan
    ADMIN = "admin"  # also users, purge, settings

    def allows(self, needed: Role) -> bool:
        """Whether this role includes ``needed``."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class User:
    """A console user (the password hash never leaves the store and the service)."""

    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None = None
    password_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """A user with the stored argon2 hash, for the service's password check only."""

    user: User
    password_hash: str
