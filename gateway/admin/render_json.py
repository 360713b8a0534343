"""The ``--json`` output of the admin commands: stable, documented shapes (docs/quarantine.md).

Every function returns plain JSON data built field by field from the typed
results, so a refactoring of the records cannot silently change what scripts
read. Times are ISO 8601 UTC with a ``Z``; absent values are ``null``, never
missing keys. New keys may be added; existing keys keep their meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.admin.results import ActionResult, MessageView, NoticeResult, RescanResult
from gateway.mime.types import Attachment, ParsedMessage
from gateway.model import Envelope, Verdict
from gateway.store.records import (
    AuditEntry,
    Count,
    DecisionRecord,
    DecisionStats,
    Page,
    PurgeResult,
    QuarantineRecord,
    User,
)

T = TypeVar("T")
Json = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    """``2025-05-20T12:00:00Z`` (UTC, seconds or finer), or ``None``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def page(result: Page[T], item: Callable[[T], Json]) -> Json:
    """``{"total", "limit", "offset", "items": [...]}``."""
    return {
        "total": result.total,
        "limit": result.limit,
        "offset": result.offset,
        "items": [item(i) for i in result.items],
    }


def envelope(env: Envelope) -> Json:
    """The SMTP envelope as received."""
    return {
        "mail_from": env.mail_from,
        "rcpt_tos": list(env.rcpt_tos),
        "account": env.account,
        "authenticated": env.authenticated,
        "peer": env.peer,
        "helo": env.helo,
        "tls": env.tls,
        "received_at": iso(env.received_at),
    }


def verdict(v: Verdict) -> Json:
    """The verdict with every finding (rule, category, action, language, evidence, location...)."""
    return v.to_dict()


def record(r: QuarantineRecord) -> Json:
    """A quarantined message without its bytes (the items of ``quarantine list --json``)."""
    return {
        "id": r.id,
        "status": r.status.value,
        "created_at": iso(r.created_at),
        "subject": r.subject,
        "size": r.size,
        "profile": r.profile,
        "action": r.verdict.action.value,
        "rules": list(dict.fromkeys(f.rule for f in r.verdict.acting_findings)),
        "envelope": envelope(r.envelope),
        "verdict": verdict(r.verdict),
        "status_at": iso(r.status_at),
        "status_by": r.status_by,
        "status_reason": r.status_reason,
        "claimed_until": iso(r.claimed_until),
        "last_error": r.last_error,
        "last_error_at": iso(r.last_error_at),
        "upstream_reply": r.upstream_reply,
        "refused": dict(r.refused),
        "notice": {"status": r.notice_status, "detail": r.notice_detail} if r.notice_status else None,
        "rescan": (
            {"at": iso(r.rescan.at), "by": r.rescan.by, "verdict": verdict(r.rescan.verdict)} if r.rescan else None
        ),
        "has_raw": r.has_raw,
    }


def attachment(a: Attachment) -> Json:
    """What the parser learned of one attachment (declared versus detected type, flags)."""
    return {
        "filename": a.filename,
        "declared_type": a.declared_type,
        "detected_type": a.detected_type,
        "size": a.size,
        "part": a.part,
        "sha256": a.sha256,
        "flags": sorted(f.value for f in a.flags),
        "unscannable": a.unscannable,
        "entries": [{"name": e.name, "size": e.size, "encrypted": e.encrypted} for e in a.entries],
    }


def headers(parsed: ParsedMessage) -> Json:
    """The top-level headers a reviewer identifies a message by."""
    return {
        "from": parsed.from_addr,
        "to": list(parsed.to_addrs),
        "subject": parsed.subject,
        "date": parsed.date,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "is_reply": parsed.is_reply,
    }


def audit(entry: AuditEntry) -> Json:
    """One audit row: who did what to which target, when, why and how it ended."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
        "result": entry.result.value,
        "detail": entry.detail,
    }


def show(view: MessageView, history: Sequence[AuditEntry]) -> Json:
    """``quarantine show --json``: the record plus headers, attachments, parse problems and history."""
    parsed = view.parsed
    return {
        **record(view.record),
        "raw_size": view.raw_size,
        "parse_error": view.parse_error or None,
        "headers": headers(parsed) if parsed else None,
        "attachments": [attachment(a) for a in parsed.attachments] if parsed else [],
        "unscannable": (
            [{"reason": u.reason, "detail": u.detail, "location": u.location} for u in parsed.unscannable]
            if parsed
            else []
        ),
        "history": [audit(e) for e in sorted(history, key=lambda e: (e.at, e.id or 0))],
    }


def notice(n: NoticeResult | None) -> Json | None:
    """Whether a reject notice reached the notices upstream."""
    if n is None:
        return None
    return {"sent": n.sent, "recipient": n.recipient, "detail": n.detail}


def action(result: ActionResult) -> Json:
    """The outcome of release, reject or delete."""
    return {
        "id": result.id,
        "action": result.action,
        "ok": result.ok,
        "status": result.status.value if result.status else None,
        "message": result.message,
        "upstream_reply": result.upstream_reply,
        "refused": dict(result.refused),
        "notice": notice(result.notice),
        "error": result.error or None,
    }


def rescan(result: RescanResult) -> Json:
    """A message evaluated again with the current policy."""
    return {
        "id": result.id,
        "previous_action": result.previous.value,
        "action": result.verdict.action.value,
        "now_passes": result.now_passes,
        "message": result.message,
        "verdict": verdict(result.verdict),
    }


def purge(result: PurgeResult) -> Json:
    """What a retention purge removed, and the held messages it kept."""
    return {
        "before": iso(result.before),
        "quarantined": result.quarantined,
        "decisions": result.decisions,
        "kept_held": result.kept_held,
    }


def decision(row: DecisionRecord) -> Json:
    """One row of the decision log."""
    d = row.decision
    return {
        "id": row.id,
        "queue_id": d.queue_id,
        "decided_at": iso(d.decided_at),
        "action": d.verdict.action.value,
        "outcome": d.outcome,
        "profile": d.verdict.profile,
        "account": d.envelope.account,
        "mail_from": d.envelope.mail_from,
        "rcpt_tos": list(d.envelope.rcpt_tos),
        "subject": d.subject,
        "size": d.size,
        "durations_ms": dict(d.durations_ms),
        "error": d.error or None,
        "refused": dict(d.refused),
        "findings": [f.to_dict() for f in d.verdict.findings],
    }


def _counts(counts: tuple[Count, ...]) -> dict[str, int]:
    return {c.key: c.count for c in counts}


def stats(s: DecisionStats) -> Json:
    """``decisions stats --json``: each breakdown as ``{key: count}`` in the store's order."""
    return {
        "total": s.total,
        "since": iso(s.since),
        "until": iso(s.until),
        "by_action": _counts(s.by_action),
        "by_outcome": _counts(s.by_outcome),
        "by_category": _counts(s.by_category),
        "by_language": _counts(s.by_language),
        "by_account": _counts(s.by_account),
        "by_rule": _counts(s.by_rule),
        "by_day": _counts(s.by_day),
        "by_day_action": _counts(s.by_day_action),
    }


def user(u: User) -> Json:
    """A console user (never the password hash)."""
    return {
        "name": u.name,
        "role": u.role.value,
        "disabled": u.disabled,
        "created_at": iso(u.created_at),
        "last_login_at": iso(u.last_login_at),
        "password_changed_at": iso(u.password_changed_at),
    }
