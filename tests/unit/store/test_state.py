"""Per-order/per-buyer state: the queries are served by indexes, and old events are purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import gateway.store.sql as sql_module
from gateway.state import EventKind, StateEvent
from gateway.store import SqlStore
from gateway.store import state as state_rows
from gateway.store.records import AuditEntry, AuditQuery
from tests.storekit import NOW


def _plan(store: SqlStore, query: sa.Select[object]) -> str:
    """The backend's plan for ``query``, as one text (sequential scans disabled on PostgreSQL)."""
    engine = store._engine
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # A handful of rows would make a sequential scan the cheapest plan; the
            # question is whether an index can serve the query at all.
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {sql}").all()
        else:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
    return "\n".join(str(row[-1]) for row in rows)


def _scans(plan: str) -> list[str]:
    """Plan lines that read the whole table (SQLite ``SCAN`` without an index, PostgreSQL ``Seq Scan``)."""
    return [
        line
        for line in plan.splitlines()
        if "Seq Scan" in line or ("SCAN state_events" in line and "INDEX" not in line)
    ]


def test_loading_state_is_served_by_the_kind_key_at_index(store: SqlStore) -> None:
    """Both halves of the state read (orders; the buyer since the cap period) search the index, never scan."""
    query = state_rows.load_query(["302-1", "302-2"], "b@marketplace.amazon.de", NOW - timedelta(days=30))
    assert query is not None
    plan = _plan(store, query)
    assert "ix_state_events_kind_key_at" in plan, plan
    assert not _scans(plan), plan


def test_purge_selection_is_served_by_the_at_index(store: SqlStore) -> None:
    """The retention purge finds old events by the ``at`` index (revision 0003), not by a table scan."""
    plan = _plan(store, state_rows.purge_query(NOW, 500))
    assert "ix_state_events_at" in plan, plan
    assert not _scans(plan), plan


def test_purge_state_removes_only_older_events_in_audited_batches(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events older than the cut-off go (in batches, each audited); younger ones stay."""
    monkeypatch.setattr(sql_module, "PURGE_BATCH", 3)
    buyer = "b@marketplace.amazon.de"
    store.record_events(
        [StateEvent(EventKind.PROACTIVE, buyer, NOW - timedelta(days=d), f"Q{d}") for d in range(1, 11)]
        + [StateEvent(EventKind.REVIEW_REQUEST, "302-1", NOW - timedelta(days=400), "Qold")]
    )
    entry = AuditEntry("admin", "purge", "", NOW, "retention")
    assert store.purge_state(NOW - timedelta(days=5, hours=12), entry) == 6  # days 6..10 and the order event
    left = store.load_state(["302-1"], buyer, NOW - timedelta(days=999))
    assert sorted(e.queue_id for e in left.events) == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert left.review_requested("302-1") is None
    audit = store.list_audit(AuditQuery()).items
    assert [(e.actor, e.action, e.reason, e.detail) for e in audit] == [
        ("admin", "purge", "retention", "3 state events")
    ] * 2
    assert store.purge_state(NOW - timedelta(days=30), entry) == 0
