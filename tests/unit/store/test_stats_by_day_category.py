"""Decision stats per UTC day and category, for the dashboard's per-day category chart."""

from __future__ import annotations

from datetime import timedelta

from gateway.model import Action, Category
from gateway.store import SqlStore
from gateway.store.records import Count
from tests.storekit import NOW, decision, finding
from tests.unit.store.test_decisions import fill


def test_by_day_category_counts_decisions_once_per_category_without_monitor_hits(store: SqlStore) -> None:
    """Two review.removal findings in one decision count once; monitor-mode findings not at all."""
    fill(store)
    twice = (
        finding(evidence="remove"),
        finding("review.removal.product", evidence="delete the review"),
        finding("marketing", Category.MARKETING, Action.REJECT, monitor=True),
    )
    store.record_decision(decision(findings=twice, decided_at=NOW))
    stats = store.decision_stats(None, None)
    day0, day1 = (NOW - timedelta(days=1)).date().isoformat(), NOW.date().isoformat()
    assert set(stats.by_day_category) == {
        Count(f"{day0} review.removal", 1),
        Count(f"{day0} review.incentive", 1),
        Count(f"{day1} link.external", 1),
        Count(f"{day1} review.removal", 1),
    }
    assert store.decision_stats(NOW - timedelta(hours=1), None).by_day_category == (
        Count(f"{day1} link.external", 1),
        Count(f"{day1} review.removal", 1),
    )
