"""The review service: the one place that changes quarantine state (Mailman's moderator).

The CLI (through ``asyncio.run``) and the web console call the async methods
here and nothing else. Store work runs in a thread (the store is synchronous);
relaying uses the upstream pool; re-evaluation uses the parser and the policy
of the moment. Every state-changing action takes the acting user and a reason
and is audited in the transaction of the change; refused attempts (unknown id,
wrong state) are audited too.

Release is claim -> relay -> commit: the claim is a conditional UPDATE with a
lease, so two workers or two gateways release a message once; if the relay
fails the message goes back to ``held`` with the upstream's answer; if the
process dies mid-release the lease expires and the message can be released
again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.admin.notice import build_notice
from gateway.admin.results import ActionResult, InputError, MessageView, NoticeResult, RescanResult
from gateway.admin.users import UserManager
from gateway.config import Config
from gateway.model import Action
from gateway.pipeline_types import Parser, Policy, Relay, RelayError
from gateway.state import delivery_events
from gateway.store import ConflictError, NotFoundError
from gateway.store.records import (
    AuditEntry,
    AuditQuery,
    AuditResult,
    DecisionQuery,
    DecisionRecord,
    DecisionStats,
    Page,
    PurgeResult,
    QuarantineQuery,
    QuarantineRecord,
    QuarantineStatus,
    Role,
    User,
)
from gateway.store.sql import SqlStore

log = structlog.get_logger(__name__)

#: How long a release claim holds before another worker may take the message over.
#: Longer than a relay can take (connect + commands + DATA at the upstream's timeouts).
RELEASE_LEASE = timedelta(minutes=15)

_PAST = {Action.PASS: "passed", Action.QUARANTINE: "quarantined", Action.REJECT: "rejected"}

#: Page size used when an action walks the whole held queue (rescan --all).
_WALK_PAGE = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _reason(reason: str, action: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise InputError(f"{action} needs a reason (it is written to the audit log and shown to others)")
    return reason


class ReviewService:
    """Quarantine review, decision log, audit log and console users over one store.

    Args:
        store: the SQL store.
        relay: the upstream pool (releases and reject notices go through it).
        parser: parses stored bytes for display and rescans.
        policy: returns the policy in force now (it may be reloaded between calls).
        config: the gateway configuration (notices, retention).
        clock: the current UTC time (tests pass a fixed one).
        release_lease: how long a release claim holds.
    """

    def __init__(
        self,
        store: SqlStore,
        relay: Relay,
        parser: Parser,
        policy: Callable[[], Policy],
        config: Config,
        *,
        clock: Callable[[], datetime] = _utcnow,
        release_lease: timedelta = RELEASE_LEASE,
    ) -> None:
        self._store = store
        self._relay = relay
        self._parser = parser
        self._policy = policy
        self._config = config
        self._clock = clock
        self._lease = release_lease
        self._users = UserManager(store, clock)

    # -- reading ----------------------------------------------------------------------

    async def list_messages(self, query: QuarantineQuery) -> Page[QuarantineRecord]:
        """Quarantined messages matching ``query``, newest first, with the total."""
        return await asyncio.to_thread(self._store.list_quarantined, query)

    async def counts(self) -> dict[QuarantineStatus, int]:
        """How many messages are in each status."""
        return await asyncio.to_thread(self._store.quarantine_counts)

    async def get(self, qid: str) -> QuarantineRecord:
        """One quarantined message's record (raises ``NotFoundError``)."""
        return await asyncio.to_thread(self._store.get_quarantined, qid)

    async def show(self, qid: str, *, parse: bool = True) -> MessageView:
        """One message with its verdict and, when its bytes remain, their parse (raises ``NotFoundError``)."""
        record = await self.get(qid)
        if not record.has_raw:
            return MessageView(record=record, parsed=None, raw_size=0)
        raw = await asyncio.to_thread(self._store.raw, qid)
        if not parse:
            return MessageView(record=record, parsed=None, raw_size=len(raw))
        try:
            parsed = await self._parser.parse(raw)
        except Exception as exc:  # the Parser promises not to raise; show the message anyway if it does
            log.exception("message_parse_failed", queue_id=qid)
            return MessageView(record=record, parsed=None, raw_size=len(raw), parse_error=str(exc))
        return MessageView(record=record, parsed=parsed, raw_size=len(raw))

    async def source(self, qid: str) -> bytes:
        """The stored bytes, for display next to :meth:`show` (a read, not audited; :meth:`export` is).

        Raises:
            NotFoundError: unknown id.
            ConflictError: the message was deleted.
        """
        return await asyncio.to_thread(self._store.raw, qid)

    async def export(self, qid: str, *, user: str) -> bytes:
        """The original bytes, exactly as received (an audited read).

        Raises:
            NotFoundError: unknown id.
            ConflictError: the message was deleted.
        """
        try:
            raw = await asyncio.to_thread(self._store.raw, qid)
        except (NotFoundError, ConflictError) as exc:
            await self._audit(user, "export", qid, "", AuditResult.REFUSED, str(exc))
            raise
        await self._audit(user, "export", qid, "", AuditResult.OK, f"{len(raw)} bytes")
        return raw

    async def decisions(self, query: DecisionQuery) -> Page[DecisionRecord]:
        """The decision log matching ``query``, newest first."""
        return await asyncio.to_thread(self._store.list_decisions, query)

    async def decision_stats(self, since: datetime | None = None, until: datetime | None = None) -> DecisionStats:
        """Decision counts by action, category, language, account, rule and day."""
        return await asyncio.to_thread(self._store.decision_stats, since, until)

    async def audit_log(self, query: AuditQuery) -> Page[AuditEntry]:
        """The audit log matching ``query``, newest first."""
        return await asyncio.to_thread(self._store.list_audit, query)

    # -- review actions ---------------------------------------------------------------

    async def release(self, qid: str, *, user: str, reason: str) -> ActionResult:
        """Relay the stored bytes with the original envelope, once.

        On an upstream failure the message stays held with the error recorded and the
        result says so (``ok`` false).

        Raises:
            InputError: no reason given.
            NotFoundError: unknown id.
            ConflictError: not held (already released/rejected/deleted, or being released).
        """
        reason = _reason(reason, "release")
        token = secrets.token_hex(16)
        now = self._clock()
        try:
            record = await asyncio.to_thread(self._store.claim_release, qid, token, now, now + self._lease)
        except (NotFoundError, ConflictError) as exc:
            await self._audit(user, "release", qid, reason, AuditResult.REFUSED, str(exc))
            raise
        env = record.envelope
        try:
            raw = await asyncio.to_thread(self._store.raw, qid)
            upstream = self._policy().route(env.rcpt_tos).upstream
            result = await self._relay.relay(upstream, env.mail_from, env.rcpt_tos, raw)
        except Exception as exc:
            error = str(exc) if isinstance(exc, RelayError) else f"{exc.__class__.__name__}: {exc}"
            if not isinstance(exc, RelayError):
                log.exception("message_release_crashed", queue_id=qid)
            entry = AuditEntry(user, "release", qid, self._clock(), reason, AuditResult.FAILED, error)
            await asyncio.to_thread(self._store.abort_release, qid, token, entry, error)
            log.warning("message_release_failed", queue_id=qid, user=user, error=error)
            return ActionResult(
                id=qid,
                action="release",
                ok=False,
                status=QuarantineStatus.HELD,
                message=f"{qid} was NOT released: {error}. It stays held; try again later.",
                error=error,
            )
        refused = {rcpt: f"{code} {text}" for rcpt, (code, text) in result.refused.items()}
        done = self._clock()
        detail = result.reply + (f"; refused: {', '.join(sorted(refused))}" if refused else "")
        entry = AuditEntry(user, "release", qid, done, reason, AuditResult.OK, detail)
        events = delivery_events(record.verdict, qid, done)
        try:
            kept = await asyncio.to_thread(self._store.finish_release, qid, token, entry, result.reply, refused, events)
        except Exception:
            # Delivered but not recorded: the claim will expire and a second release would
            # deliver it again. Say so loudly; the operator must mark it by hand.
            log.critical("message_release_unrecorded", queue_id=qid, user=user, reply=result.reply)
            raise
        log.info("message_released", queue_id=qid, user=user, reply=result.reply, refused=sorted(refused))
        if not kept:
            log.error("message_release_claim_lost", queue_id=qid, user=user)
        message = f"{qid} released to {', '.join(r for r in env.rcpt_tos if r not in refused)}: {result.reply}"
        if refused:
            message += f" (refused by the next hop: {'; '.join(f'{r}: {t}' for r, t in refused.items())})"
        return ActionResult(
            id=qid,
            action="release",
            ok=True,
            status=QuarantineStatus.RELEASED,
            message=message,
            upstream_reply=result.reply,
            refused=refused,
        )

    async def reject(self, qid: str, *, user: str, reason: str, notify: bool = False) -> ActionResult:
        """Reject a held message; with ``notify``, tell the original sender why.

        A notice that cannot be sent does not undo the reject; the result and the
        record say it was not sent.

        Raises:
            InputError: no reason given.
            NotFoundError: unknown id.
            ConflictError: not held.
        """
        reason = _reason(reason, "reject")
        detail = "notice requested" if notify else ""
        record = await self._decide(qid, QuarantineStatus.REJECTED, "reject", user, reason, detail)
        log.info("message_rejected", queue_id=qid, user=user, notify=notify)
        notice = await self._notify(record, user, reason) if notify else None
        message = f"{qid} rejected"
        if notice is not None:
            message += f"; notice {'sent' if notice.sent else 'NOT sent'} to {notice.recipient or '(no sender)'}"
            if not notice.sent:
                message += f": {notice.detail}"
        return ActionResult(id=qid, action="reject", ok=True, status=record.status, message=message, notice=notice)

    async def delete(self, qid: str, *, user: str, reason: str = "") -> ActionResult:
        """Delete a held message's bytes; its record and decision stay for the log.

        Raises:
            NotFoundError: unknown id.
            ConflictError: not held.
        """
        reason = " ".join(reason.split())
        record = await self._decide(qid, QuarantineStatus.DELETED, "delete", user, reason, "")
        log.info("message_deleted", queue_id=qid, user=user)
        return ActionResult(id=qid, action="delete", ok=True, status=record.status, message=f"{qid} deleted")

    async def release_many(self, ids: Sequence[str], *, user: str, reason: str) -> tuple[ActionResult, ...]:
        """Release each of ``ids`` in turn; unknown or non-held ids give a failed result, not an exception."""
        reason = _reason(reason, "release")
        return tuple([await self._bulk(qid, "release", self.release(qid, user=user, reason=reason)) for qid in ids])

    async def reject_many(
        self, ids: Sequence[str], *, user: str, reason: str, notify: bool = False
    ) -> tuple[ActionResult, ...]:
        """Reject each of ``ids`` in turn (optionally notifying each sender); failures are results."""
        reason = _reason(reason, "reject")
        return tuple(
            [await self._bulk(qid, "reject", self.reject(qid, user=user, reason=reason, notify=notify)) for qid in ids]
        )

    async def rescan(self, qid: str, *, user: str, reason: str = "") -> RescanResult:
        """Evaluate a stored message again with the current policy and state; nothing is released.

        Raises:
            NotFoundError: unknown id.
            ConflictError: the message was deleted (nothing left to scan).
        """
        record = await self.get(qid)
        raw = await asyncio.to_thread(self._store.raw, qid)
        parsed = await self._parser.parse(raw)
        policy = self._policy()
        route = policy.route(record.envelope.rcpt_tos)
        order_ids = [o.value for o in parsed.order_ids]
        buyer_period = policy.needs(route.profile).buyer_period
        buyer = route.buyer if buyer_period is not None else None
        since = self._clock() - (buyer_period or timedelta(0))
        state = await asyncio.to_thread(self._store.load_state, order_ids, buyer, since)
        # Evaluation is pure but CPU-bound (regexes over every text): keep it off the event loop.
        verdict = await asyncio.to_thread(policy.evaluate, parsed, route, state)
        previous = record.verdict.action
        rules = ", ".join(f.rule for f in verdict.acting_findings) or "no rule"
        detail = f"{previous.value} -> {verdict.action.value} ({rules})"
        entry = AuditEntry(user, "rescan", qid, self._clock(), " ".join(reason.split()), AuditResult.OK, detail)
        await asyncio.to_thread(self._store.record_rescan, qid, verdict, entry)
        log.info("message_rescanned", queue_id=qid, user=user, action=verdict.action.value)
        if verdict.action is Action.PASS:
            message = f"{qid} now passes the current policy; it stays {record.status.value} until someone releases it"
        else:
            message = f"{qid} would still be {_PAST[verdict.action]} ({rules})"
        return RescanResult(id=qid, previous=previous, verdict=verdict, message=message)

    async def rescan_held(self, *, user: str, reason: str = "") -> tuple[RescanResult, ...]:
        """Rescan every held message with the current policy; none is released."""
        ids: list[str] = []
        offset = 0
        while True:
            query = QuarantineQuery(status=QuarantineStatus.HELD, limit=_WALK_PAGE, offset=offset)
            page = await self.list_messages(query)
            ids += [r.id for r in page.items]
            offset += _WALK_PAGE
            if offset >= page.total or not page.items:
                break
        return tuple([await self.rescan(qid, user=user, reason=reason) for qid in ids])

    async def purge(
        self, *, user: str, older_than: timedelta | None = None, include_held: bool = False, reason: str = ""
    ) -> PurgeResult:
        """Remove reviewed messages and decisions older than ``older_than`` (default: the retention setting).

        Held messages are kept unless ``include_held``: nobody has decided on them yet.
        State events (review requests per order, proactive messages per buyer) older than
        ``store.state_retention_days`` go too, whatever ``older_than`` says: the history
        rules need them longer than the quarantine.
        """
        age = older_than if older_than is not None else timedelta(days=self._config.store.retention_days)
        if age <= timedelta(0):
            raise InputError("the purge age must be positive")
        before = self._clock() - age
        detail = f"older than {age.days} days" + ("" if age.seconds == 0 else f" {age.seconds}s")
        detail += ", including held" if include_held else ""
        entry = AuditEntry(user, "purge", "", self._clock(), " ".join(reason.split()), AuditResult.OK, detail)
        result = await asyncio.to_thread(self._store.purge, before, entry, include_held)
        state_age = timedelta(days=self._config.store.state_retention_days)
        state_entry = replace(entry, detail=f"state events older than {state_age.days} days")
        removed = await asyncio.to_thread(self._store.purge_state, self._clock() - state_age, state_entry)
        result = replace(result, state_events=removed)
        log.info(
            "quarantine_purged",
            user=user,
            quarantined=result.quarantined,
            decisions=result.decisions,
            state_events=removed,
        )
        return result

    async def record(
        self, user: str, action: str, *, target: str = "", reason: str = "", ok: bool = True, detail: str = ""
    ) -> None:
        """Audit an admin action taken outside the quarantine (a policy reload from the console)."""
        result = AuditResult.OK if ok else AuditResult.FAILED
        await self._audit(user, action, target, " ".join(reason.split()), result, detail)

    # -- console users ----------------------------------------------------------------

    async def add_user(self, name: str, password: str, role: str | Role, *, actor: str) -> User:
        """Create a console user (argon2 hash; raises ``InputError`` or ``ConflictError``)."""
        return await self._users.add(name, password, role, actor=actor)

    async def list_users(self) -> tuple[User, ...]:
        """Every console user, by name."""
        return await self._users.all()

    async def set_role(self, name: str, role: str | Role, *, actor: str) -> User:
        """Change a user's role (the last enabled admin cannot be demoted)."""
        return await self._users.set_role(name, role, actor=actor)

    async def set_password(self, name: str, password: str, *, actor: str) -> User:
        """Replace a user's password."""
        return await self._users.set_password(name, password, actor=actor)

    async def set_disabled(self, name: str, disabled: bool, *, actor: str) -> User:
        """Disable or re-enable a user (the last enabled admin cannot be disabled)."""
        return await self._users.set_disabled(name, disabled, actor=actor)

    async def authenticate(self, name: str, password: str, *, source: str = "") -> User | None:
        """The user when the password is right and the account enabled, else ``None`` (audited)."""
        return await self._users.authenticate(name, password, source=source)

    # -- helpers ----------------------------------------------------------------------

    async def _audit(self, user: str, action: str, target: str, reason: str, result: AuditResult, detail: str) -> None:
        entry = AuditEntry(user, action, target, self._clock(), reason, result, detail)
        await asyncio.to_thread(self._store.write_audit, entry)

    async def _decide(
        self, qid: str, status: QuarantineStatus, action: str, user: str, reason: str, detail: str
    ) -> QuarantineRecord:
        entry = AuditEntry(user, action, qid, self._clock(), reason, AuditResult.OK, detail)
        try:
            return await asyncio.to_thread(self._store.decide, qid, status, entry)
        except (NotFoundError, ConflictError) as exc:
            await self._audit(user, action, qid, reason, AuditResult.REFUSED, str(exc))
            raise

    async def _notify(self, record: QuarantineRecord, user: str, reason: str) -> NoticeResult:
        recipient = record.envelope.mail_from
        if not recipient:
            result = NoticeResult(sent=False, recipient="", detail="the message had no sender address (null sender)")
        else:
            raw = await asyncio.to_thread(self._store.raw, record.id) if record.has_raw else None
            notice = build_notice(
                record,
                reviewer=user,
                reason=reason,
                from_address=self._config.notice_from,
                sent_at=self._clock(),
                raw=raw,
            )
            try:
                sent = await self._relay.relay(
                    self._config.notices.upstream, notice.mail_from, [notice.rcpt_to], notice.data
                )
                result = NoticeResult(sent=True, recipient=recipient, detail=sent.reply)
            except Exception as exc:
                detail = str(exc) if isinstance(exc, RelayError) else f"{exc.__class__.__name__}: {exc}"
                result = NoticeResult(sent=False, recipient=recipient, detail=detail)
        outcome = AuditResult.OK if result.sent else AuditResult.FAILED
        entry = AuditEntry(user, "notify", record.id, self._clock(), reason, outcome, f"{recipient}: {result.detail}")
        await asyncio.to_thread(
            self._store.record_notice, record.id, "sent" if result.sent else "failed", result.detail, entry
        )
        event = "notice_sent" if result.sent else "notice_failed"
        log.info(event, queue_id=record.id, user=user, detail=result.detail)
        return result

    @staticmethod
    async def _bulk(qid: str, action: str, call: Coroutine[Any, Any, ActionResult]) -> ActionResult:
        try:
            result = await call
        except (NotFoundError, ConflictError) as exc:
            status = None if isinstance(exc, NotFoundError) else QuarantineStatus(exc.status)
            return ActionResult(id=qid, action=action, ok=False, status=status, message=str(exc), error=str(exc))
        return result
