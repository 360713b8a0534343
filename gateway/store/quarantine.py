"""Quarantined messages: rows, raw bytes, and the status changes of the review workflow.

A release is claimed with one conditional UPDATE (``held`` -> ``releasing``,
with a token and a lease), so of two workers or two gateways releasing the same
message exactly one wins; a claim left by a crashed process expires with its
lease and the message can be released again. Functions here take an open
connection; :class:`gateway.store.sql.SqlStore` owns the transactions and
writes the audit row in the same one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gateway.model import Finding, Verdict
from gateway.store import decisions as dlog
from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import Page, QuarantineQuery, QuarantineRecord, QuarantineStatus, RescanInfo
from gateway.store.schema import decisions, quarantine, quarantine_messages

_HELD = QuarantineStatus.HELD.value
_RELEASING = QuarantineStatus.RELEASING.value


def insert(conn: Connection, qid: str, decision_id: int, created_at: datetime, raw: bytes) -> None:
    """Store a new held message and its raw bytes."""
    conn.execute(quarantine.insert().values(id=qid, decision_id=decision_id, created_at=created_at, status=_HELD))
    conn.execute(
        quarantine_messages.insert().values(quarantine_id=qid, sha256=hashlib.sha256(raw).hexdigest(), raw=raw)
    )


def _joined() -> sa.Select[Any]:
    has_raw = sa.exists().where(quarantine_messages.c.quarantine_id == quarantine.c.id).label("has_raw")
    return sa.select(
        quarantine,
        has_raw,
        *[c.label(f"d_{c.name}") for c in decisions.c if c.name != "id"],
    ).select_from(quarantine.join(decisions, decisions.c.id == quarantine.c.decision_id))


def _record(row: RowMapping, found: dict[int, tuple[Finding, ...]]) -> QuarantineRecord:
    drow = {name[2:]: value for name, value in row.items() if name.startswith("d_")}
    verdict = dlog.verdict_from_row(drow, found.get(row["decision_id"], ()))
    rescan = None
    if row["rescanned_at"] is not None and row["rescan_verdict"] is not None:
        rescan = RescanInfo(
            at=row["rescanned_at"], verdict=Verdict.from_dict(row["rescan_verdict"]), by=row["rescanned_by"]
        )
    return QuarantineRecord(
        id=row["id"],
        decision_id=row["decision_id"],
        created_at=row["created_at"],
        status=QuarantineStatus(row["status"]),
        envelope=dlog.envelope_from_row(drow),
        verdict=verdict,
        subject=drow["subject"],
        size=drow["size"],
        status_at=row["status_at"],
        status_by=row["status_by"],
        status_reason=row["status_reason"],
        claimed_until=row["claimed_until"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        upstream_reply=row["upstream_reply"],
        refused={str(k): str(v) for k, v in (row["refused"] or {}).items()},
        notice_status=row["notice_status"],
        notice_detail=row["notice_detail"],
        rescan=rescan,
        has_raw=bool(row["has_raw"]),
    )


def get(conn: Connection, qid: str) -> QuarantineRecord:
    """The quarantined message ``qid``.

    Raises:
        NotFoundError: no such id.
    """
    row = conn.execute(_joined().where(quarantine.c.id == qid)).mappings().first()
    if row is None:
        raise NotFoundError("quarantined message", qid)
    return _record(row, dlog.load_findings(conn, [row["decision_id"]]))


def raw(conn: Connection, qid: str) -> bytes:
    """The original bytes of ``qid``.

    Raises:
        NotFoundError: no such id.
        ConflictError: the message was deleted (its bytes are gone).
    """
    data = conn.execute(
        sa.select(quarantine_messages.c.raw).where(quarantine_messages.c.quarantine_id == qid)
    ).scalar_one_or_none()
    if data is None:
        status = _status(conn, qid)
        raise ConflictError(qid, status, f"message {qid} was {status}; its content is no longer stored")
    return bytes(data)


def _status(conn: Connection, qid: str) -> str:
    status = conn.execute(sa.select(quarantine.c.status).where(quarantine.c.id == qid)).scalar_one_or_none()
    if status is None:
        raise NotFoundError("quarantined message", qid)
    return str(status)


def _conditions(query: QuarantineQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.status is not None:
        conditions.append(quarantine.c.status == query.status.value)
    if query.account:
        conditions.append(decisions.c.account == query.account)
    if query.profile:
        conditions.append(decisions.c.profile == query.profile)
    if query.since is not None:
        conditions.append(quarantine.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(quarantine.c.created_at < query.until)
    if query.text:
        conditions.append(dlog.text_filter(query.text))
    found = dlog.finding_filter(query.rule, query.category, query.language)
    if found is not None:
        conditions.append(found)
    return conditions


def select_page(conn: Connection, query: QuarantineQuery) -> Page[QuarantineRecord]:
    """One page of the quarantine, newest first, with the total matching."""
    conditions = _conditions(query)
    total = conn.execute(
        sa.select(sa.func.count())
        .select_from(quarantine.join(decisions, decisions.c.id == quarantine.c.decision_id))
        .where(*conditions)
    ).scalar_one()
    rows = list(
        conn.execute(
            _joined()
            .where(*conditions)
            .order_by(quarantine.c.created_at.desc(), quarantine.c.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        ).mappings()
    )
    found = dlog.load_findings(conn, [r["decision_id"] for r in rows])
    return Page(items=tuple(_record(r, found) for r in rows), total=int(total), limit=query.limit, offset=query.offset)


def count_by_status(conn: Connection) -> dict[QuarantineStatus, int]:
    """How many messages are in each status (every status present, zero when none)."""
    counts = {status: 0 for status in QuarantineStatus}
    rows = conn.execute(sa.select(quarantine.c.status, sa.func.count()).group_by(quarantine.c.status)).all()
    for status, n in rows:
        counts[QuarantineStatus(status)] = int(n)
    return counts


def claim(conn: Connection, qid: str, token: str, now: datetime, until: datetime) -> QuarantineRecord:
    """Claim ``qid`` for release: ``held`` (or ``releasing`` with an expired lease) -> ``releasing``.

    Raises:
        NotFoundError: no such id.
        ConflictError: released, rejected or deleted already, or claimed by a live worker.
    """
    claimable = sa.or_(
        quarantine.c.status == _HELD,
        sa.and_(quarantine.c.status == _RELEASING, quarantine.c.claimed_until < now),
    )
    result = conn.execute(
        quarantine.update()
        .where(quarantine.c.id == qid, claimable)
        .values(status=_RELEASING, claim_token=token, claimed_until=until)
    )
    if result.rowcount != 1:
        record = get(conn, qid)
        raise ConflictError(qid, record.status.value, _busy(record))
    return get(conn, qid)


def _busy(record: QuarantineRecord) -> str:
    if record.status is QuarantineStatus.RELEASING:
        return f"message {record.id} is being released by another worker (claim expires {record.claimed_until})"
    if record.status_by:
        return f"message {record.id} was already {record.status.value} by {record.status_by} at {record.status_at}"
    return f"message {record.id} is {record.status.value}"


def finish_release(
    conn: Connection, qid: str, token: str, actor: str, reason: str, at: datetime, reply: str, refused: dict[str, str]
) -> bool:
    """Mark a claimed message released; ``False`` if the claim was lost (lease expired and taken)."""
    result = conn.execute(
        quarantine.update()
        .where(quarantine.c.id == qid, quarantine.c.claim_token == token)
        .values(
            status=QuarantineStatus.RELEASED.value,
            status_at=at,
            status_by=actor,
            status_reason=reason,
            claim_token=None,
            claimed_until=None,
            upstream_reply=reply,
            refused=refused or None,
        )
    )
    return result.rowcount == 1


def abort_release(conn: Connection, qid: str, token: str, at: datetime, error: str) -> bool:
    """Return a claimed message to ``held`` with the upstream's error; ``False`` if the claim was lost."""
    result = conn.execute(
        quarantine.update()
        .where(quarantine.c.id == qid, quarantine.c.claim_token == token)
        .values(status=_HELD, claim_token=None, claimed_until=None, last_error=error, last_error_at=at)
    )
    return result.rowcount == 1


def decide(
    conn: Connection, qid: str, status: QuarantineStatus, actor: str, reason: str, at: datetime
) -> QuarantineRecord:
    """Move a held message to ``status`` (rejected or deleted); a delete also drops its bytes.

    Raises:
        NotFoundError: no such id.
        ConflictError: the message is not held.
    """
    result = conn.execute(
        quarantine.update()
        .where(quarantine.c.id == qid, quarantine.c.status == _HELD)
        .values(status=status.value, status_at=at, status_by=actor, status_reason=reason)
    )
    if result.rowcount != 1:
        record = get(conn, qid)
        raise ConflictError(qid, record.status.value, _busy(record))
    if status is QuarantineStatus.DELETED:
        conn.execute(quarantine_messages.delete().where(quarantine_messages.c.quarantine_id == qid))
    return get(conn, qid)


def set_notice(conn: Connection, qid: str, status: str, detail: str) -> None:
    """Record whether the reject notice went out."""
    conn.execute(quarantine.update().where(quarantine.c.id == qid).values(notice_status=status, notice_detail=detail))


def set_rescan(conn: Connection, qid: str, verdict: Verdict, actor: str, at: datetime) -> None:
    """Record the latest re-evaluation of ``qid``.

    Raises:
        NotFoundError: no such id.
    """
    result = conn.execute(
        quarantine.update()
        .where(quarantine.c.id == qid)
        .values(rescanned_at=at, rescanned_by=actor, rescan_verdict=verdict.to_dict())
    )
    if result.rowcount != 1:
        raise NotFoundError("quarantined message", qid)


def purge_ids(conn: Connection, before: datetime, include_held: bool, limit: int) -> list[str]:
    """Up to ``limit`` ids quarantined before ``before`` that a purge may remove.

    Messages being released are never purged; held ones only with ``include_held``.
    """
    statuses = [s.value for s in QuarantineStatus if s.final]
    if include_held:
        statuses.append(_HELD)
    rows = conn.execute(
        sa.select(quarantine.c.id)
        .where(quarantine.c.created_at < before, quarantine.c.status.in_(statuses))
        .order_by(quarantine.c.created_at)
        .limit(limit)
    ).scalars()
    return [str(r) for r in rows]


def delete_rows(conn: Connection, ids: list[str]) -> int:
    """Remove quarantine rows and their bytes (the decision rows stay)."""
    if not ids:
        return 0
    conn.execute(quarantine_messages.delete().where(quarantine_messages.c.quarantine_id.in_(ids)))
    return int(conn.execute(quarantine.delete().where(quarantine.c.id.in_(ids))).rowcount)


def count_held_before(conn: Connection, before: datetime) -> int:
    """Held (unreviewed) messages quarantined before ``before``."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(quarantine)
            .where(quarantine.c.created_at < before, quarantine.c.status == _HELD)
        ).scalar_one()
    )
