"""The decision log: one row per message with its findings in their own table.

Findings are rows (not only JSON) so the log can be filtered and counted by
rule, category and language in SQL. Functions here take an open connection;
:class:`gateway.store.sql.SqlStore` owns the transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.model import Action, Category, Decision, Envelope, Finding, Signal, Verdict
from gateway.store.records import Count, DecisionQuery, DecisionRecord, DecisionStats, Page
from gateway.store.schema import decisions, findings, quarantine

# Envelope lists are stored newline-joined: an address never contains a newline,
# and a substring search then works the same on SQLite and PostgreSQL.
_SEP = "\n"


def _row(decision: Decision) -> dict[str, Any]:
    """The ``decisions`` row of ``decision`` (without its id)."""
    env = decision.envelope
    verdict = decision.verdict
    return {
        "queue_id": decision.queue_id,
        "decided_at": decision.decided_at,
        "received_at": env.received_at,
        "account": env.account,
        "peer": env.peer,
        "helo": env.helo,
        "tls": env.tls,
        "mail_from": env.mail_from,
        "mail_options": _SEP.join(env.mail_options),
        "recipients": _SEP.join(env.rcpt_tos),
        "profile": verdict.profile,
        "action": verdict.action.value,
        "outcome": decision.outcome,
        "subject": decision.subject,
        "size": decision.size,
        "durations": dict(decision.durations_ms),
        "error": decision.error,
        "refused": dict(decision.refused),
        "signals": sorted(s.value for s in verdict.signals),
        "order_ids": list(verdict.order_ids),
        "buyer": verdict.buyer,
    }


def insert(conn: Connection, decision: Decision) -> int:
    """Write ``decision`` and its findings; return the decision's row id."""
    row_id = conn.execute(decisions.insert().returning(decisions.c.id), _row(decision)).scalar_one()
    findings_ = decision.verdict.findings
    if findings_:
        conn.execute(
            findings.insert(),
            [
                {
                    "decision_id": row_id,
                    "position": position,
                    "rule": f.rule,
                    "category": f.category.value,
                    "action": f.action.value,
                    "language": f.language,
                    "evidence": f.evidence,
                    "location": f.location,
                    "description": f.description,
                    "monitor": f.monitor,
                }
                for position, f in enumerate(findings_)
            ],
        )
    return int(row_id)


def insert_many(conn: Connection, batch: Sequence[Decision]) -> None:
    """Write several decisions: those without findings in one multi-row statement.

    Most messages pass with no finding; one ``executemany`` for them costs a
    fraction of a statement per row, and only decisions with findings need their
    row id back.
    """
    plain = [_row(d) for d in batch if not d.verdict.findings]
    if plain:
        conn.execute(decisions.insert(), plain)
    for decision in batch:
        if decision.verdict.findings:
            insert(conn, decision)


def split(text: str) -> tuple[str, ...]:
    """Inverse of the newline join used for envelope lists."""
    return tuple(text.split(_SEP)) if text else ()


def envelope_from_row(row: Mapping[Any, Any]) -> Envelope:
    """The envelope stored in a ``decisions`` row."""
    return Envelope(
        queue_id=row["queue_id"],
        mail_from=row["mail_from"],
        rcpt_tos=split(row["recipients"]),
        peer=row["peer"],
        helo=row["helo"],
        account=row["account"],
        tls=bool(row["tls"]),
        received_at=row["received_at"],
        mail_options=split(row["mail_options"]),
    )


def finding_from_row(row: Mapping[Any, Any]) -> Finding:
    """A finding from a ``findings`` row."""
    return Finding(
        rule=row["rule"],
        category=Category(row["category"]),
        action=Action(row["action"]),
        description=row["description"],
        evidence=row["evidence"],
        location=row["location"],
        language=row["language"],
        monitor=bool(row["monitor"]),
    )


def load_findings(conn: Connection, decision_ids: Sequence[int]) -> dict[int, tuple[Finding, ...]]:
    """Findings of each decision in ``decision_ids``, in the order they were found."""
    if not decision_ids:
        return {}
    result: dict[int, list[Finding]] = {i: [] for i in decision_ids}
    rows = conn.execute(
        sa.select(findings)
        .where(findings.c.decision_id.in_(list(decision_ids)))
        .order_by(findings.c.decision_id, findings.c.position)
    ).mappings()
    for row in rows:
        result[row["decision_id"]].append(finding_from_row(row))
    return {k: tuple(v) for k, v in result.items()}


def verdict_from_row(row: Mapping[Any, Any], found: tuple[Finding, ...]) -> Verdict:
    """The verdict stored in a ``decisions`` row with its findings."""
    return Verdict(
        action=Action(row["action"]),
        profile=row["profile"],
        findings=found,
        signals=frozenset(Signal(s) for s in row["signals"]),
        order_ids=tuple(row["order_ids"]),
        buyer=row["buyer"],
    )


def decision_from_row(row: Mapping[Any, Any], found: tuple[Finding, ...]) -> Decision:
    """The :class:`Decision` stored in a ``decisions`` row."""
    return Decision(
        queue_id=row["queue_id"],
        decided_at=row["decided_at"],
        envelope=envelope_from_row(row),
        verdict=verdict_from_row(row, found),
        subject=row["subject"],
        size=row["size"],
        durations_ms={str(k): float(v) for k, v in row["durations"].items()},
        outcome=row["outcome"],
        error=row["error"],
        refused={str(k): str(v) for k, v in row["refused"].items()},
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with wildcards in it taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_filter(text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring search over subject, sender and recipients."""
    pattern = like_pattern(text)
    return sa.or_(
        decisions.c.subject.ilike(pattern, escape="\\"),
        decisions.c.mail_from.ilike(pattern, escape="\\"),
        decisions.c.recipients.ilike(pattern, escape="\\"),
    )


def finding_filter(rule: str | None, category: str | None, language: str | None) -> sa.ColumnElement[bool] | None:
    """Decisions with at least one finding matching all given fields (``rule`` also matches sub-rules)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if rule:
        # ``review.removal`` also finds ``review.removal.feedback``.
        conditions.append(sa.or_(findings.c.rule == rule, findings.c.rule.startswith(rule + ".", autoescape=True)))
    if category:
        conditions.append(findings.c.category == category)
    if language:
        conditions.append(findings.c.language == language)
    if not conditions:
        return None
    return sa.exists().where(findings.c.decision_id == decisions.c.id, *conditions)


def query_conditions(query: DecisionQuery) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions for a decision-log query."""
    conditions: list[sa.ColumnElement[bool]] = []
    if query.action is not None:
        conditions.append(decisions.c.action == query.action.value)
    if query.outcome:
        conditions.append(decisions.c.outcome == query.outcome)
    if query.account:
        conditions.append(decisions.c.account == query.account)
    if query.profile:
        conditions.append(decisions.c.profile == query.profile)
    if query.since is not None:
        conditions.append(decisions.c.decided_at >= query.since)
    if query.until is not None:
        conditions.append(decisions.c.decided_at < query.until)
    if query.text:
        conditions.append(text_filter(query.text))
    found = finding_filter(query.rule, query.category, query.language)
    if found is not None:
        conditions.append(found)
    return conditions


def select_page(conn: Connection, query: DecisionQuery) -> Page[DecisionRecord]:
    """One page of the decision log, newest first, with the total matching."""
    conditions = query_conditions(query)
    total = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(*conditions)).scalar_one()
    rows = list(
        conn.execute(
            sa.select(decisions)
            .where(*conditions)
            .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        ).mappings()
    )
    found = load_findings(conn, [r["id"] for r in rows])
    items = tuple(DecisionRecord(id=r["id"], decision=decision_from_row(r, found[r["id"]])) for r in rows)
    return Page(items=items, total=int(total), limit=query.limit, offset=query.offset)


def _day(conn: Connection, column: Any) -> Any:
    """The UTC calendar day of a time column, as text ``YYYY-MM-DD``."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite stores UTC wall time as text ("2025-05-01 10:00:00.000000"); date() reads it.
    return sa.func.date(column)


def _counts(
    conn: Connection, key: Any, conditions: list[sa.ColumnElement[bool]], *, via_findings: bool
) -> tuple[Count, ...]:
    if via_findings:
        stmt = (
            sa.select(key.label("key"), sa.func.count(sa.distinct(decisions.c.id)).label("n"))
            .select_from(decisions.join(findings, findings.c.decision_id == decisions.c.id))
            .where(*conditions, findings.c.monitor.is_(False), key.is_not(None))
        )
    else:
        stmt = sa.select(key.label("key"), sa.func.count().label("n")).select_from(decisions).where(*conditions)
    rows = conn.execute(stmt.group_by(key).order_by(sa.desc("n"), key)).all()
    return tuple(Count(key="" if k is None else str(k), count=int(n)) for k, n in rows)


def stats(conn: Connection, since: datetime | None, until: datetime | None) -> DecisionStats:
    """Counts of decisions in ``[since, until)`` by action, outcome, category, language, account, rule, day.

    Category, language and rule count findings that acted (not monitor-mode ones).
    """
    conditions = query_conditions(DecisionQuery(since=since, until=until))
    total = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(*conditions)).scalar_one()
    day = _day(conn, decisions.c.decided_at)
    by_day_action = conn.execute(
        sa.select(day.label("day"), decisions.c.action, sa.func.count().label("n"))
        .where(*conditions)
        .group_by(day, decisions.c.action)
        .order_by(day, decisions.c.action)
    ).all()
    by_day_category = conn.execute(
        sa.select(day.label("day"), findings.c.category, sa.func.count(sa.distinct(decisions.c.id)).label("n"))
        .select_from(decisions.join(findings, findings.c.decision_id == decisions.c.id))
        .where(*conditions, findings.c.monitor.is_(False))
        .group_by(day, findings.c.category)
        .order_by(day, findings.c.category)
    ).all()
    return DecisionStats(
        total=int(total),
        since=since,
        until=until,
        by_action=_counts(conn, decisions.c.action, conditions, via_findings=False),
        by_outcome=_counts(conn, decisions.c.outcome, conditions, via_findings=False),
        by_category=_counts(conn, findings.c.category, conditions, via_findings=True),
        by_language=_counts(conn, findings.c.language, conditions, via_findings=True),
        by_account=_counts(conn, decisions.c.account, conditions, via_findings=False),
        by_rule=_counts(conn, findings.c.rule, conditions, via_findings=True),
        by_day=tuple(sorted(_counts(conn, day, conditions, via_findings=False), key=lambda c: c.key)),
        by_day_action=tuple(Count(key=f"{d} {a}", count=int(n)) for d, a, n in by_day_action),
        by_day_category=tuple(Count(key=f"{d} {c}", count=int(n)) for d, c, n in by_day_category),
    )


def purge_ids(conn: Connection, before: datetime, limit: int) -> list[int]:
    """Up to ``limit`` decisions older than ``before`` whose message is no longer in quarantine."""
    kept = sa.exists().where(quarantine.c.decision_id == decisions.c.id)
    rows = conn.execute(
        sa.select(decisions.c.id).where(decisions.c.decided_at < before, ~kept).order_by(decisions.c.id).limit(limit)
    )
    return [int(r) for r in rows.scalars()]


def delete_rows(conn: Connection, ids: list[int]) -> int:
    """Remove decisions and their findings."""
    if not ids:
        return 0
    conn.execute(findings.delete().where(findings.c.decision_id.in_(ids)))
    return int(conn.execute(decisions.delete().where(decisions.c.id.in_(ids))).rowcount)
