"""The audit log: every admin action, written in the transaction of the change it records."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.records import AuditEntry, AuditQuery, AuditResult, Page
from gateway.store.schema import audit_log

# Bounded so one huge reason or error text cannot bloat the log (the column is TEXT).
_MAX_TEXT = 4000


def write(conn: Connection, entry: AuditEntry) -> int:
    """Append ``entry``; return its id."""
    row_id = conn.execute(
        audit_log.insert()
        .values(
            at=entry.at,
            actor=entry.actor[:128],
            action=entry.action[:32],
            target=entry.target[:255],
            reason=entry.reason[:_MAX_TEXT],
            result=entry.result.value,
            detail=entry.detail[:_MAX_TEXT],
        )
        .returning(audit_log.c.id)
    ).scalar_one()
    return int(row_id)


def select_page(conn: Connection, query: AuditQuery) -> Page[AuditEntry]:
    """One page of the audit log, newest first."""
    conditions: list[sa.ColumnElement[bool]] = []
    if query.actor:
        conditions.append(audit_log.c.actor == query.actor)
    if query.action:
        conditions.append(audit_log.c.action == query.action)
    if query.target:
        conditions.append(audit_log.c.target == query.target)
    if query.since is not None:
        conditions.append(audit_log.c.at >= query.since)
    if query.until is not None:
        conditions.append(audit_log.c.at < query.until)
    total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*conditions)).scalar_one()
    rows = conn.execute(
        sa.select(audit_log)
        .where(*conditions)
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    ).mappings()
    items = tuple(
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            reason=r["reason"],
            result=AuditResult(r["result"]),
            detail=r["detail"],
        )
        for r in rows
    )
    return Page(items=items, total=int(total), limit=query.limit, offset=query.offset)
