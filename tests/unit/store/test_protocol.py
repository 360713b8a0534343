"""The pipeline's Store protocol: decisions, quarantine, per-order state, durability settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.model import Action, Category
from gateway.pipeline_types import Store
from gateway.state import EventKind, StateEvent
from gateway.store import SqlStore, StoreError, open_store
from gateway.store.records import DecisionQuery, QuarantineStatus
from tests.storekit import NOW, decision, finding, raw_message


def test_sql_store_satisfies_the_pipeline_protocol(store: SqlStore) -> None:
    """SqlStore is usable wherever the pipeline expects a Store."""
    as_protocol: Store = store
    assert as_protocol.load_state([], None, NOW).events == ()


def test_quarantine_keeps_exact_bytes_envelope_and_verdict(store: SqlStore) -> None:
    """quarantine() stores the raw bytes byte-for-byte, the envelope and every finding, status held."""
    d = decision(
        findings=(
            finding(),
            finding("link.external", Category.LINK_EXTERNAL, language=None, evidence="http://x.example"),
            finding("marketing", Category.MARKETING, monitor=True, language="de", evidence="Rabattcode"),
        )
    )
    raw = raw_message() + b"\x00\xff binary tail\r\n"
    qid = store.quarantine(d, raw)
    assert qid == d.queue_id
    assert store.raw(qid) == raw
    record = store.get_quarantined(qid)
    assert record.status is QuarantineStatus.HELD
    assert record.envelope == d.envelope
    assert record.verdict == d.verdict
    assert record.subject == d.subject
    assert record.created_at == NOW
    assert record.has_raw


def test_quarantine_also_writes_the_decision(store: SqlStore) -> None:
    """The quarantined message's decision is in the decision log, identical to what was given."""
    d = decision()
    store.quarantine(d, raw_message())
    page = store.list_decisions(DecisionQuery())
    assert page.total == 1
    assert page.items[0].decision == d


def test_same_queue_id_twice_fails_and_keeps_the_first(store: SqlStore) -> None:
    """A second quarantine with the same id raises StoreError (451) and leaves the first untouched."""
    d = decision("DUP1")
    store.quarantine(d, b"first")
    with pytest.raises(StoreError):
        store.quarantine(decision("DUP1"), b"second")
    assert store.raw("DUP1") == b"first"
    assert store.list_decisions(DecisionQuery()).total == 1


def test_record_decision_round_trips_every_field(store: SqlStore) -> None:
    """A recorded decision reads back equal: envelope, verdict, findings order, durations, refused."""
    d = decision(
        action=Action.PASS,
        findings=(finding("marketing", Category.MARKETING, Action.REJECT, monitor=True),),
        outcome="relayed",
    )
    d = type(d)(**{**{f: getattr(d, f) for f in d.__dataclass_fields__}, "refused": {"x@y.example": "550 no"}})
    store.record_decision(d)
    (record,) = store.list_decisions(DecisionQuery()).items
    assert record.decision == d


def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    """A naive datetime is an error, not silently stored as if it were UTC."""
    d = decision(decided_at=datetime(2025, 5, 1, 12, 0))
    with pytest.raises(StoreError, match="naive datetime"):
        store.record_decision(d)
    assert store.list_decisions(DecisionQuery()).total == 0


def test_times_come_back_in_utc(store: SqlStore) -> None:
    """A time given in another zone is stored as the same instant and returned in UTC."""
    from zoneinfo import ZoneInfo

    berlin = datetime(2025, 5, 1, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    store.record_decision(decision(decided_at=berlin))
    (record,) = store.list_decisions(DecisionQuery()).items
    assert record.decision.decided_at == berlin
    assert record.decision.decided_at.tzinfo == UTC
    assert record.decision.decided_at.hour == 12


def test_state_events_feed_review_repeat_and_proactive_cap(store: SqlStore) -> None:
    """Recorded events come back for their order ids and buyer, and nothing else does."""
    buyer = "a1b2c3@marketplace.amazon.de"
    store.record_events(
        [
            StateEvent(EventKind.REVIEW_REQUEST, "302-1111111-1111111", NOW - timedelta(days=3), "Q1"),
            StateEvent(EventKind.ORDER_SEEN, "302-1111111-1111111", NOW - timedelta(days=9), "Q0"),
            StateEvent(EventKind.PROACTIVE, buyer, NOW - timedelta(days=3), "Q1"),
            StateEvent(EventKind.PROACTIVE, buyer, NOW - timedelta(days=40), "Qold"),
            StateEvent(EventKind.REVIEW_REQUEST, "302-2222222-2222222", NOW, "Q2"),
            StateEvent(EventKind.PROACTIVE, "other@marketplace.amazon.de", NOW, "Q2"),
        ]
    )
    snapshot = store.load_state(["302-1111111-1111111"], buyer, NOW - timedelta(days=60))
    assert snapshot.review_requested("302-1111111-1111111") == NOW - timedelta(days=3)
    assert snapshot.order_first_seen("302-1111111-1111111") == NOW - timedelta(days=9)
    assert snapshot.review_requested("302-2222222-2222222") is None
    assert snapshot.proactive_count(buyer, NOW - timedelta(days=30)) == 1
    assert snapshot.proactive_count(buyer, NOW - timedelta(days=60)) == 2
    assert snapshot.proactive_count("other@marketplace.amazon.de", NOW - timedelta(days=1)) == 0


def test_buyer_history_is_read_only_over_the_cap_period(store: SqlStore) -> None:
    """Proactive events older than ``buyer_since`` stay in the database; order events are read whatever their age."""
    buyer = "busy@marketplace.amazon.de"
    store.record_events(
        [StateEvent(EventKind.PROACTIVE, buyer, NOW - timedelta(days=d), f"Q{d}") for d in range(0, 400, 10)]
        + [StateEvent(EventKind.REVIEW_REQUEST, "302-3333333-3333333", NOW - timedelta(days=300), "Qr")]
    )
    snapshot = store.load_state(["302-3333333-3333333"], buyer, NOW - timedelta(days=30))
    assert sorted(e.queue_id for e in snapshot.events if e.kind is EventKind.PROACTIVE) == ["Q0", "Q10", "Q20", "Q30"]
    assert snapshot.review_requested("302-3333333-3333333") == NOW - timedelta(days=300)
    # Without a buyer, no buyer events at all.
    assert [e.kind for e in store.load_state([], None, NOW - timedelta(days=999)).events] == []


def test_recording_the_same_events_twice_counts_once(store: SqlStore) -> None:
    """Events are idempotent per (kind, key, queue id): a retried release does not double-count."""
    buyer = "b@marketplace.amazon.de"
    events = [StateEvent(EventKind.PROACTIVE, buyer, NOW, "Q9"), StateEvent(EventKind.REVIEW_REQUEST, "o-1", NOW, "Q9")]
    store.record_events(events)
    store.record_events(events)
    store.record_events([StateEvent(EventKind.PROACTIVE, buyer, NOW, "Q10")])
    snapshot = store.load_state(["o-1"], buyer, NOW - timedelta(days=1))
    assert snapshot.proactive_count(buyer, NOW - timedelta(days=1)) == 2
    assert len(snapshot.events) == 3


def test_state_survives_reopening(database_url: str) -> None:
    """Per-order state is durable: a new store on the same database sees it (review.repeat across restart)."""
    first = open_store(database_url)
    first.record_events([StateEvent(EventKind.REVIEW_REQUEST, "302-9", NOW, "Q1")])
    first.close()
    second = open_store(database_url)
    try:
        assert second.load_state(["302-9"], None, NOW).review_requested("302-9") == NOW
    finally:
        second.close()


def test_sqlite_runs_wal_with_full_sync_busy_timeout_and_foreign_keys(tmp_path: object) -> None:
    """Every SQLite connection has WAL, synchronous=FULL, a busy timeout and foreign keys on."""
    opened = open_store(f"sqlite:///{tmp_path}/g.db")
    try:
        with opened._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        opened.close()


def test_store_errors_become_store_error_without_message_bytes(store: SqlStore) -> None:
    """A database failure surfaces as StoreError (the pipeline's 451) and its text never carries the body."""
    with store._engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE quarantine_messages"))
    with pytest.raises(StoreError, match="database error") as caught:
        store.quarantine(decision(), b"SECRET-BODY-BYTES")
    assert "SECRET-BODY" not in str(caught.value)
    assert "SECRET-BODY" not in str(caught.value.__cause__)
    assert store.list_decisions(DecisionQuery()).total == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unsupported database"),
        ("postgresql+psycopg2://u@h/db", "postgresql\\+psycopg"),
        ("postgresql://nobody@127.0.0.1:1/db", "database error: OperationalError"),
        ("sqlite://", "needs a file path"),
        ("sqlite:////nonexistent-dir/x/gateway.db", "does not exist"),
        ("not a url", "invalid database_url"),
    ],
)
def test_unusable_urls_are_clear_errors(url: str, message: str) -> None:
    """An unusable database_url is refused with a message saying what to use."""
    with pytest.raises(StoreError, match=message):
        open_store(url)
