"""The SQL store: the pipeline's :class:`~gateway.pipeline_types.Store` plus what review needs.

Synchronous by design (SQLAlchemy Core on a connection pool): the pipeline and
the review service call it from a thread. Every method is one transaction;
each state change and its audit row commit together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from gateway.model import Decision, Verdict
from gateway.state import MemoryState, StateEvent
from gateway.store import audit, decisions, quarantine, state, users
from gateway.store.engine import create_engine, read, write
from gateway.store.errors import StoreError
from gateway.store.migrate import upgrade
from gateway.store.records import (
    AuditEntry,
    AuditQuery,
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
    UserCredentials,
)

log = structlog.get_logger(__name__)

#: Rows removed per purge transaction, so a large purge never holds the SQLite
#: write lock long enough to make a concurrent SMTP commit time out.
PURGE_BATCH = 500


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """Turn driver and SQLAlchemy errors into :class:`StoreError` (the pipeline answers 451)."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        # The driver's own error, first line only: SQLAlchemy's text appends the SQL.
        cause = getattr(exc, "orig", None) or exc
        first_line = (str(cause).strip().splitlines() or [""])[0]
        raise StoreError(f"database error: {cause.__class__.__name__}: {first_line}") from exc


class SqlStore:
    """The store on SQLite or PostgreSQL. Build it with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def ping(self) -> None:
        """Check the database answers (for health checks).

        Raises:
            StoreError: it does not.
        """
        with _database_errors(), read(self._engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- the pipeline's Store protocol ------------------------------------------------

    def record_decision(self, decision: Decision) -> None:
        """Append ``decision`` (with its findings) to the decision log."""
        with _database_errors(), write(self._engine) as conn:
            decisions.insert(conn, decision)

    def quarantine(self, decision: Decision, raw: bytes) -> str:
        """Store the message and its decision in one transaction; return its quarantine id.

        The id is the queue id. Returns only after the commit (SQLite ``synchronous=FULL``
        or a PostgreSQL commit): the SMTP 250 depends on it. Do not also call
        :meth:`record_decision` for the same message.

        Raises:
            StoreError: nothing was stored (the pipeline answers 451).
        """
        with _database_errors(), write(self._engine) as conn:
            decision_id = decisions.insert(conn, decision)
            quarantine.insert(conn, decision.queue_id, decision_id, decision.decided_at, raw)
        log.info("message_quarantined", queue_id=decision.queue_id, size=len(raw))
        return decision.queue_id

    def load_state(self, order_ids: Sequence[str], buyer: str | None, buyer_since: datetime) -> MemoryState:
        """A snapshot of the state rows about these orders, and about this buyer since ``buyer_since``."""
        with _database_errors(), read(self._engine) as conn:
            return state.load(conn, order_ids, buyer, buyer_since)

    def record_batch(self, batch: Sequence[Decision], events: Sequence[StateEvent]) -> None:
        """Append decisions and state events in one transaction (the pipeline's group commit).

        One commit (one fsync on SQLite) for everything a busy worker queued,
        instead of one per message.
        """
        with _database_errors(), write(self._engine) as conn:
            decisions.insert_many(conn, batch)
            if events:
                state.record(conn, events)

    def record_events(self, events: Sequence[StateEvent]) -> None:
        """Remember per-order/per-buyer events (idempotent per kind, key and queue id)."""
        with _database_errors(), write(self._engine) as conn:
            state.record(conn, events)

    # -- quarantine -----------------------------------------------------------------

    def get_quarantined(self, qid: str) -> QuarantineRecord:
        """The quarantined message ``qid`` (raises :class:`NotFoundError`)."""
        with _database_errors(), read(self._engine) as conn:
            return quarantine.get(conn, qid)

    def raw(self, qid: str) -> bytes:
        """The original bytes of ``qid`` (raises ``NotFoundError``, or ``ConflictError`` once deleted)."""
        with _database_errors(), read(self._engine) as conn:
            return quarantine.raw(conn, qid)

    def list_quarantined(self, query: QuarantineQuery) -> Page[QuarantineRecord]:
        """A page of quarantined messages matching ``query``, newest first."""
        with _database_errors(), read(self._engine) as conn:
            return quarantine.select_page(conn, query)

    def quarantine_counts(self) -> dict[QuarantineStatus, int]:
        """How many quarantined messages are in each status."""
        with _database_errors(), read(self._engine) as conn:
            return quarantine.count_by_status(conn)

    def claim_release(self, qid: str, token: str, now: datetime, until: datetime) -> QuarantineRecord:
        """Claim ``qid`` for release until ``until`` (raises ``NotFoundError``/``ConflictError``)."""
        with _database_errors(), write(self._engine) as conn:
            return quarantine.claim(conn, qid, token, now, until)

    def finish_release(
        self,
        qid: str,
        token: str,
        entry: AuditEntry,
        reply: str,
        refused: dict[str, str],
        events: Sequence[StateEvent],
    ) -> bool:
        """Mark ``qid`` released, remember its state events and audit it, in one transaction.

        Returns ``False`` when the claim had expired and been taken by another worker
        (the message may then have been delivered twice; the audit row says so).
        """
        with _database_errors(), write(self._engine) as conn:
            kept = quarantine.finish_release(conn, qid, token, entry.actor, entry.reason, entry.at, reply, refused)
            state.record(conn, events)
            audit.write(conn, entry if kept else _lost(entry))
        return kept

    def abort_release(self, qid: str, token: str, entry: AuditEntry, error: str) -> bool:
        """Put a claimed ``qid`` back to held with ``error`` and audit it, in one transaction."""
        with _database_errors(), write(self._engine) as conn:
            kept = quarantine.abort_release(conn, qid, token, entry.at, error)
            audit.write(conn, entry if kept else _lost(entry))
        return kept

    def decide(self, qid: str, status: QuarantineStatus, entry: AuditEntry) -> QuarantineRecord:
        """Reject or delete held ``qid`` and audit it, in one transaction."""
        with _database_errors(), write(self._engine) as conn:
            record = quarantine.decide(conn, qid, status, entry.actor, entry.reason, entry.at)
            audit.write(conn, entry)
        return record

    def record_notice(self, qid: str, status: str, detail: str, entry: AuditEntry) -> None:
        """Record the outcome of a reject notice and audit it, in one transaction."""
        with _database_errors(), write(self._engine) as conn:
            quarantine.set_notice(conn, qid, status, detail)
            audit.write(conn, entry)

    def record_rescan(self, qid: str, verdict: Verdict, entry: AuditEntry) -> None:
        """Record a re-evaluation of ``qid`` and audit it, in one transaction."""
        with _database_errors(), write(self._engine) as conn:
            quarantine.set_rescan(conn, qid, verdict, entry.actor, entry.at)
            audit.write(conn, entry)

    def purge(self, before: datetime, entry: AuditEntry, include_held: bool = False) -> PurgeResult:
        """Remove quarantined messages and decisions older than ``before``, in batches.

        Held (unreviewed) messages stay unless ``include_held``; decisions of messages
        still in quarantine stay with them. Each batch commits with its own audit row.
        """
        removed_q = 0
        removed_d = 0
        with _database_errors():
            while True:
                with write(self._engine) as conn:
                    ids = quarantine.purge_ids(conn, before, include_held, PURGE_BATCH)
                    if not ids:
                        break
                    n = quarantine.delete_rows(conn, ids)
                    removed_q += n
                    audit.write(conn, _batch(entry, f"{n} quarantined messages"))
            while True:
                with write(self._engine) as conn:
                    ids_d = decisions.purge_ids(conn, before, PURGE_BATCH)
                    if not ids_d:
                        break
                    n = decisions.delete_rows(conn, ids_d)
                    removed_d += n
                    audit.write(conn, _batch(entry, f"{n} decisions"))
            with read(self._engine) as conn:
                kept_held = quarantine.count_held_before(conn, before)
            if removed_q == 0 and removed_d == 0:
                with write(self._engine) as conn:
                    audit.write(conn, _batch(entry, "nothing older"))
        log.info("store_purged", before=before.isoformat(), quarantined=removed_q, decisions=removed_d)
        return PurgeResult(before=before, quarantined=removed_q, decisions=removed_d, kept_held=kept_held)

    def purge_state(self, before: datetime, entry: AuditEntry) -> int:
        """Remove per-order and per-buyer state events older than ``before``, in batches.

        Each batch commits with its own audit row; returns how many were removed.
        """
        removed = 0
        with _database_errors():
            while True:
                with write(self._engine) as conn:
                    ids = state.purge_ids(conn, before, PURGE_BATCH)
                    if not ids:
                        break
                    n = state.delete_rows(conn, ids)
                    removed += n
                    audit.write(conn, _batch(entry, f"{n} state events"))
        log.info("state_purged", before=before.isoformat(), events=removed)
        return removed

    # -- decision log ---------------------------------------------------------------

    def list_decisions(self, query: DecisionQuery) -> Page[DecisionRecord]:
        """A page of the decision log matching ``query``, newest first."""
        with _database_errors(), read(self._engine) as conn:
            return decisions.select_page(conn, query)

    def decision_stats(self, since: datetime | None, until: datetime | None) -> DecisionStats:
        """Decision counts in ``[since, until)`` by action, category, language, account, rule, day."""
        with _database_errors(), read(self._engine) as conn:
            return decisions.stats(conn, since, until)

    # -- audit ----------------------------------------------------------------------

    def write_audit(self, entry: AuditEntry) -> None:
        """Append an audit row for an action that changed nothing in the store."""
        with _database_errors(), write(self._engine) as conn:
            audit.write(conn, entry)

    def list_audit(self, query: AuditQuery) -> Page[AuditEntry]:
        """A page of the audit log matching ``query``, newest first."""
        with _database_errors(), read(self._engine) as conn:
            return audit.select_page(conn, query)

    # -- users ----------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, role: Role, entry: AuditEntry) -> User:
        """Create a console user and audit it (raises ``ConflictError`` if the name is taken)."""
        with _database_errors(), write(self._engine) as conn:
            user = users.insert(conn, name, password_hash, role, entry.at)
            audit.write(conn, entry)
        return user

    def credentials(self, name: str) -> UserCredentials:
        """User ``name`` with its password hash (raises ``NotFoundError``)."""
        with _database_errors(), read(self._engine) as conn:
            return users.get(conn, name)

    def list_users(self) -> tuple[User, ...]:
        """Every console user, by name."""
        with _database_errors(), read(self._engine) as conn:
            return users.select_all(conn)

    def update_user(self, name: str, values: dict[str, Any], entry: AuditEntry | None) -> User:
        """Change user ``name`` (role, hash, disabled, last login) and audit it when ``entry`` is given."""
        with _database_errors(), write(self._engine) as conn:
            user = users.update(conn, name, values)
            if entry is not None:
                audit.write(conn, entry)
        return user

    def count_admins(self) -> int:
        """Enabled admin users (the last one cannot be demoted or disabled)."""
        with _database_errors(), read(self._engine) as conn:
            return users.count_admins(conn)


def _lost(entry: AuditEntry) -> AuditEntry:
    detail = "claim expired and was taken by another worker before this one finished"
    return AuditEntry(
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        at=entry.at,
        reason=entry.reason,
        result=entry.result,
        detail=f"{entry.detail}; {detail}" if entry.detail else detail,
    )


def _batch(entry: AuditEntry, detail: str) -> AuditEntry:
    return AuditEntry(
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        at=entry.at,
        reason=entry.reason,
        result=entry.result,
        detail=f"{entry.detail}: {detail}" if entry.detail else detail,
    )


def open_store(database_url: str) -> SqlStore:
    """Open the store at ``database_url``, creating or upgrading its schema first.

    Safe when several processes open the same database at once.

    Raises:
        StoreError: the URL is unusable, the database does not answer, or the schema
            cannot be brought up to date (:class:`~gateway.store.errors.SchemaError`).
    """
    engine = create_engine(database_url)
    try:
        with _database_errors():
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)
