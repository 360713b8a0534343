"""What the review service answers: typed results the CLI prints and the console renders."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.mime.types import ParsedMessage
from gateway.model import Action, Verdict
from gateway.store.records import QuarantineRecord, QuarantineStatus


class InputError(ValueError):
    """The request itself is unusable (empty reason, weak password, unknown role...)."""


@dataclass(frozen=True, slots=True)
class NoticeResult:
    """Whether the reject notice reached the notices upstream.

    Attributes:
        sent: the upstream accepted it.
        recipient: where it went (the original envelope sender).
        detail: the upstream's reply, or why it was not sent.
    """

    sent: bool
    recipient: str
    detail: str


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one review action on one message.

    Attributes:
        id: the quarantine id.
        action: ``release``, ``reject`` or ``delete``.
        ok: the action took effect.
        status: the message's status afterwards (``None`` when the id is unknown).
        message: one human sentence saying what happened.
        upstream_reply: the next hop's reply to a release.
        refused: recipients the next hop refused on release, ``address -> "code message"``.
        notice: the reject notice, when one was asked for.
        error: why it did not take effect (``ok`` is false).
    """

    id: str
    action: str
    ok: bool
    status: QuarantineStatus | None
    message: str
    upstream_reply: str = ""
    refused: dict[str, str] = field(default_factory=dict)
    notice: NoticeResult | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class RescanResult:
    """A held message evaluated again with the policy of the day.

    Attributes:
        id: the quarantine id.
        previous: the action of the verdict that quarantined it.
        verdict: the new verdict.
        message: one human sentence; a message that now passes is said to, and stays held.
    """

    id: str
    previous: Action
    verdict: Verdict
    message: str

    @property
    def now_passes(self) -> bool:
        """The current policy would let it through (a human still has to release it)."""
        return self.verdict.action is Action.PASS


@dataclass(frozen=True, slots=True)
class MessageView:
    """Everything the console shows for one quarantined message.

    Attributes:
        record: the stored record (envelope, verdict, status, history).
        parsed: the parse of its raw bytes, or ``None`` when they are gone or were not asked for.
        raw_size: size of the stored bytes (0 once deleted).
        parse_error: why the bytes could not be parsed, if that happened.
    """

    record: QuarantineRecord
    parsed: ParsedMessage | None
    raw_size: int
    parse_error: str = ""
