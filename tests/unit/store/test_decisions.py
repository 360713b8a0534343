"""The decision log: filters by finding fields, text search, and the stats breakdowns."""

from __future__ import annotations

from datetime import timedelta

from gateway.model import Action, Category
from gateway.store import SqlStore
from gateway.store.records import AuditEntry, AuditQuery, AuditResult, Count, DecisionQuery
from tests.storekit import NOW, decision, finding


def fill(store: SqlStore) -> None:
    day1 = NOW - timedelta(days=1)
    store.record_decision(decision(action=Action.PASS, decided_at=day1, outcome="relayed", account="a"))
    store.record_decision(decision(action=Action.PASS, decided_at=NOW, outcome="relayed", account="b"))
    store.record_decision(
        decision(
            action=Action.REJECT,
            decided_at=day1,
            outcome="rejected",
            account="a",
            findings=(
                finding(action=Action.REJECT, language="de"),
                finding("review.incentive", Category.REVIEW_INCENTIVE, Action.REJECT, language="de"),
                finding("marketing", Category.MARKETING, Action.REJECT, language="en", monitor=True),
            ),
        )
    )
    store.record_decision(
        decision(
            action=Action.QUARANTINE,
            decided_at=NOW,
            outcome="quarantined",
            account="b",
            findings=(finding("link.external", Category.LINK_EXTERNAL, language=None),),
        )
    )


def test_decision_filters(store: SqlStore) -> None:
    """Decisions filter by action, outcome, rule, category, language, account and time."""
    fill(store)

    def total(**kw: object) -> int:
        return store.list_decisions(DecisionQuery(**kw)).total  # type: ignore[arg-type]

    assert total() == 4
    assert total(action=Action.PASS) == 2
    assert total(outcome="rejected") == 1
    assert total(rule="review") == 1  # a dotted prefix covers its sub-rules
    assert total(rule="review.remov") == 0
    assert total(rule="review.incentive") == 1
    assert total(category="link.external") == 1
    assert total(language="de") == 1
    assert total(account="a") == 2
    assert total(since=NOW - timedelta(hours=1)) == 2
    assert total(until=NOW - timedelta(hours=1)) == 2
    assert total(text="302-1234567") == 4


def test_stats_count_by_action_category_language_account_rule_and_day(store: SqlStore) -> None:
    """Stats give per-action/outcome/account/day counts and per-finding breakdowns without monitor hits."""
    fill(store)
    stats = store.decision_stats(None, None)
    assert stats.total == 4
    assert set(stats.by_action) == {Count("pass", 2), Count("reject", 1), Count("quarantine", 1)}
    assert stats.by_action[0] == Count("pass", 2)
    assert set(stats.by_account) == {Count("a", 2), Count("b", 2)}
    # One decision with two review findings counts once per category; monitor-mode marketing not at all.
    assert set(stats.by_category) == {
        Count("review.removal", 1),
        Count("review.incentive", 1),
        Count("link.external", 1),
    }
    assert stats.by_language == (Count("de", 1),)
    assert {c.key for c in stats.by_rule} == {"review.removal", "review.incentive", "link.external"}
    day0, day1 = (NOW - timedelta(days=1)).date().isoformat(), NOW.date().isoformat()
    assert stats.by_day == (Count(day0, 2), Count(day1, 2))
    assert set(stats.by_day_action) == {
        Count(f"{day0} pass", 1),
        Count(f"{day0} reject", 1),
        Count(f"{day1} pass", 1),
        Count(f"{day1} quarantine", 1),
    }
    recent = store.decision_stats(NOW - timedelta(hours=1), None)
    assert recent.total == 2


def test_audit_log_filters_newest_first(store: SqlStore) -> None:
    """Audit rows come back newest first and filter by actor, action, target and time."""
    for minutes, actor, action in [(0, "alice", "release"), (5, "bob", "reject"), (10, "alice", "login")]:
        store.write_audit(
            AuditEntry(actor, action, "Q1", NOW + timedelta(minutes=minutes), "why", AuditResult.OK, "detail")
        )
    page = store.list_audit(AuditQuery())
    assert [a.action for a in page.items] == ["login", "reject", "release"]
    assert page.items[0].id is not None
    assert store.list_audit(AuditQuery(actor="alice")).total == 2
    assert store.list_audit(AuditQuery(action="reject")).items[0].actor == "bob"
    assert store.list_audit(AuditQuery(since=NOW + timedelta(minutes=1))).total == 2


def test_group_commit_keeps_every_decision_and_its_findings(store: SqlStore) -> None:
    """``record_batch`` (the pipeline's group commit) writes plain and flagged decisions alike."""
    batch = [
        decision(queue_id="B1", action=Action.PASS, outcome="relayed"),
        decision(
            queue_id="B2",
            action=Action.REJECT,
            outcome="rejected",
            findings=(finding(action=Action.REJECT), finding("marketing", Category.MARKETING, Action.REJECT)),
        ),
        decision(queue_id="B3", action=Action.PASS, outcome="relayed"),
    ]
    store.record_batch(batch, [])
    page = store.list_decisions(DecisionQuery())
    assert sorted(r.decision.queue_id for r in page.items) == ["B1", "B2", "B3"]
    flagged = next(r.decision for r in page.items if r.decision.queue_id == "B2")
    assert [f.rule for f in flagged.verdict.findings] == ["review.removal", "marketing"]
    assert store.list_decisions(DecisionQuery(rule="marketing")).total == 1
