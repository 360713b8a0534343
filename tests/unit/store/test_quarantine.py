"""Quarantine rows: listing and filters, the release claim, reject/delete, purge, audit atomicity."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from gateway.model import Category
from gateway.state import EventKind, StateEvent
from gateway.store import ConflictError, NotFoundError, SqlStore, open_store
from gateway.store import sql as sql_module
from gateway.store.records import AuditEntry, AuditQuery, AuditResult, QuarantineQuery, QuarantineStatus
from tests.storekit import NOW, decision, finding, raw_message


def entry(action: str, target: str, actor: str = "alice", reason: str = "checked") -> AuditEntry:
    return AuditEntry(actor=actor, action=action, target=target, at=NOW, reason=reason)


def fill(store: SqlStore) -> dict[str, str]:
    """Four messages over four days with different rules, languages, accounts and profiles."""
    specs = {
        "old-de": decision(
            decided_at=NOW - timedelta(days=3),
            findings=(finding(language="de", evidence="Bewertung löschen"),),
            account="shop-de",
            subject="Ihre Bestellung",
        ),
        "link": decision(
            decided_at=NOW - timedelta(days=2),
            findings=(finding("link.external", Category.LINK_EXTERNAL, language=None),),
            mail_from="Agent@Other-Seller.example",
        ),
        "feedback": decision(
            decided_at=NOW - timedelta(days=1),
            findings=(finding("review.removal.feedback", language="fr"),),
            profile="ebay",
            rcpt=("buyer99@members.ebay.fr",),
            subject="100% satisfied_?",
        ),
        "new": decision(decided_at=NOW, findings=(finding("marketing", Category.MARKETING, language="pl"),)),
    }
    return {name: store.quarantine(d, raw_message(name)) for name, d in specs.items()}


def ids(store: SqlStore, **filters: object) -> list[str]:
    return [r.id for r in store.list_quarantined(QuarantineQuery(**filters)).items]  # type: ignore[arg-type]


def test_list_is_newest_first_with_total_and_pages(store: SqlStore) -> None:
    """The list is newest first; limit/offset page through it and total counts every match."""
    q = fill(store)
    assert ids(store) == [q["new"], q["feedback"], q["link"], q["old-de"]]
    page = store.list_quarantined(QuarantineQuery(limit=2, offset=2))
    assert [r.id for r in page.items] == [q["link"], q["old-de"]]
    assert page.total == 4


def test_filters_by_rule_category_language_account_profile_and_dates(store: SqlStore) -> None:
    """Each filter narrows the list; a rule id also finds its sub-rules."""
    q = fill(store)
    assert set(ids(store, rule="review.removal")) == {q["old-de"], q["feedback"]}
    assert ids(store, rule="review.removal.feedback") == [q["feedback"]]
    assert ids(store, rule="review.remov") == []
    assert ids(store, category="link.external") == [q["link"]]
    assert ids(store, language="de") == [q["old-de"]]
    assert ids(store, account="shop-de") == [q["old-de"]]
    assert ids(store, profile="ebay") == [q["feedback"]]
    assert ids(store, since=NOW - timedelta(days=2), until=NOW) == [q["feedback"], q["link"]]


def test_text_search_covers_subject_sender_recipient_case_insensitively(store: SqlStore) -> None:
    """Search matches subject, sender or recipient, ignoring case, with % and _ taken literally."""
    q = fill(store)
    assert ids(store, text="bestellung") == [q["old-de"]]
    assert ids(store, text="agent@other-seller") == [q["link"]]
    assert ids(store, text="MEMBERS.EBAY") == [q["feedback"]]
    assert ids(store, text="100%") == [q["feedback"]]
    assert ids(store, text="d_?") == [q["feedback"]]
    assert ids(store, text="%") == [q["feedback"]]


def test_status_filter_and_counts(store: SqlStore) -> None:
    """The status filter and the per-status counts follow review actions."""
    q = fill(store)
    store.decide(q["link"], QuarantineStatus.REJECTED, entry("reject", q["link"]))
    assert ids(store, status=QuarantineStatus.REJECTED) == [q["link"]]
    counts = store.quarantine_counts()
    assert counts[QuarantineStatus.HELD] == 3
    assert counts[QuarantineStatus.REJECTED] == 1
    assert counts[QuarantineStatus.RELEASED] == 0


def test_unknown_id_is_not_found(store: SqlStore) -> None:
    """Reading or acting on an unknown id raises NotFoundError naming it."""
    with pytest.raises(NotFoundError, match="nope"):
        store.get_quarantined("nope")
    with pytest.raises(NotFoundError, match="nope"):
        store.raw("nope")
    with pytest.raises(NotFoundError):
        store.claim_release("nope", "t", NOW, NOW + timedelta(minutes=5))
    with pytest.raises(NotFoundError):
        store.decide("nope", QuarantineStatus.DELETED, entry("delete", "nope"))


def test_claim_is_exclusive_until_the_lease_expires(store: SqlStore) -> None:
    """A second claim on a live claim conflicts; after the lease expires another worker may claim it."""
    qid = store.quarantine(decision(), raw_message())
    store.claim_release(qid, "worker-1", NOW, NOW + timedelta(minutes=10))
    with pytest.raises(ConflictError, match="being released by another worker"):
        store.claim_release(qid, "worker-2", NOW + timedelta(minutes=1), NOW + timedelta(minutes=11))
    later = NOW + timedelta(minutes=11)
    record = store.claim_release(qid, "worker-2", later, later + timedelta(minutes=10))
    assert record.status is QuarantineStatus.RELEASING
    # The crashed first worker coming back cannot finish: its claim was taken over.
    assert not store.finish_release(qid, "worker-1", entry("release", qid), "250 ok", {}, [])
    assert store.finish_release(qid, "worker-2", entry("release", qid), "250 2.0.0 queued", {}, [])
    record = store.get_quarantined(qid)
    assert record.status is QuarantineStatus.RELEASED
    assert record.upstream_reply == "250 2.0.0 queued"
    assert record.status_by == "alice"
    audit = store.list_audit(AuditQuery(target=qid)).items
    assert any("claim expired" in a.detail for a in audit)


def test_concurrent_claims_from_threads_have_one_winner(store: SqlStore) -> None:
    """Eight threads claiming the same message at once: exactly one wins, the rest conflict."""
    qid = store.quarantine(decision(), raw_message())
    barrier = threading.Barrier(8)
    wins: list[str] = []
    conflicts: list[str] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            store.claim_release(qid, f"w{n}", NOW, NOW + timedelta(minutes=10))
            wins.append(f"w{n}")
        except ConflictError:
            conflicts.append(f"w{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert len(conflicts) == 7


def test_abort_release_returns_to_held_with_the_error(store: SqlStore) -> None:
    """A failed release puts the message back to held with the upstream's error recorded."""
    qid = store.quarantine(decision(), raw_message())
    store.claim_release(qid, "w", NOW, NOW + timedelta(minutes=10))
    failed = AuditEntry("alice", "release", qid, NOW, "ok to send", AuditResult.FAILED, "451 try later")
    assert store.abort_release(qid, "w", failed, "451 4.3.0 try later")
    record = store.get_quarantined(qid)
    assert record.status is QuarantineStatus.HELD
    assert record.last_error == "451 4.3.0 try later"
    assert record.last_error_at == NOW
    assert store.list_audit(AuditQuery(target=qid)).items[0].result is AuditResult.FAILED


def test_finish_release_records_state_events_with_it(store: SqlStore) -> None:
    """A release commits the message's per-order events in the same transaction."""
    qid = store.quarantine(decision(), raw_message())
    store.claim_release(qid, "w", NOW, NOW + timedelta(minutes=10))
    events = [StateEvent(EventKind.REVIEW_REQUEST, "302-1234567-1234567", NOW, qid)]
    store.finish_release(qid, "w", entry("release", qid), "250 ok", {}, events)
    assert store.load_state(["302-1234567-1234567"], None, NOW).review_requested("302-1234567-1234567") == NOW


def test_reject_and_delete_only_from_held(store: SqlStore) -> None:
    """Reject and delete apply to held messages; a delete drops the bytes but keeps the record."""
    a = store.quarantine(decision(), raw_message())
    b = store.quarantine(decision(), raw_message())
    rejected = store.decide(a, QuarantineStatus.REJECTED, entry("reject", a, reason="asks for review removal"))
    assert rejected.status is QuarantineStatus.REJECTED
    assert rejected.status_reason == "asks for review removal"
    with pytest.raises(ConflictError, match="already rejected by alice"):
        store.decide(a, QuarantineStatus.DELETED, entry("delete", a))
    deleted = store.decide(b, QuarantineStatus.DELETED, entry("delete", b))
    assert not deleted.has_raw
    with pytest.raises(ConflictError, match="no longer stored"):
        store.raw(b)
    with pytest.raises(ConflictError):
        store.claim_release(b, "w", NOW, NOW + timedelta(minutes=1))


def test_a_change_whose_audit_row_fails_is_rolled_back(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit row and the state change commit together: no audit, no change."""
    qid = store.quarantine(decision(), raw_message())

    def broken(*_args: object) -> int:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(sql_module.audit, "write", broken)
    with pytest.raises(RuntimeError):
        store.decide(qid, QuarantineStatus.REJECTED, entry("reject", qid))
    monkeypatch.undo()
    assert store.get_quarantined(qid).status is QuarantineStatus.HELD


def test_purge_removes_only_older_reviewed_messages_and_decisions(store: SqlStore) -> None:
    """Purge removes reviewed messages and decisions older than the cutoff; held ones stay unless asked."""
    old_held = store.quarantine(decision(decided_at=NOW - timedelta(days=40)), raw_message())
    old_rejected = store.quarantine(decision(decided_at=NOW - timedelta(days=40)), raw_message())
    store.decide(old_rejected, QuarantineStatus.REJECTED, entry("reject", old_rejected))
    recent_rejected = store.quarantine(decision(decided_at=NOW - timedelta(days=5)), raw_message())
    store.decide(recent_rejected, QuarantineStatus.REJECTED, entry("reject", recent_rejected))
    store.record_decision(decision(decided_at=NOW - timedelta(days=31), outcome="relayed"))
    store.record_decision(decision(decided_at=NOW - timedelta(days=29), outcome="relayed"))

    result = store.purge(NOW - timedelta(days=30), entry("purge", "", reason="retention"))
    assert (result.quarantined, result.decisions, result.kept_held) == (1, 2, 1)
    remaining = {r.id for r in store.list_quarantined(QuarantineQuery()).items}
    assert remaining == {old_held, recent_rejected}
    assert store.raw(old_held)

    result = store.purge(NOW - timedelta(days=30), entry("purge", ""), include_held=True)
    assert (result.quarantined, result.decisions, result.kept_held) == (1, 1, 0)
    assert {r.id for r in store.list_quarantined(QuarantineQuery()).items} == {recent_rejected}
    assert store.list_audit(AuditQuery(action="purge")).total >= 3


def test_purge_works_in_batches(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge larger than one batch removes everything older, batch by batch."""
    monkeypatch.setattr(sql_module, "PURGE_BATCH", 2)
    for _ in range(5):
        store.record_decision(decision(decided_at=NOW - timedelta(days=60), outcome="relayed"))
    result = store.purge(NOW - timedelta(days=30), entry("purge", ""))
    assert result.decisions == 5
    assert store.list_audit(AuditQuery(action="purge")).total == 3


def test_quarantine_survives_reopen(database_url: str) -> None:
    """A quarantined message is there, byte for byte, after the store is closed and reopened."""
    first = open_store(database_url)
    qid = first.quarantine(decision(), raw_message())
    first.close()
    second = open_store(database_url)
    try:
        assert second.raw(qid) == raw_message()
    finally:
        second.close()
