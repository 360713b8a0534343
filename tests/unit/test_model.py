"""Core data: action severity, verdict helpers and JSON round trips."""

from __future__ import annotations

from gateway.model import Action, Category, Finding, Signal, Verdict


def test_most_severe() -> None:
    """Reject beats quarantine beats pass; no actions means pass."""
    assert Action.most_severe([Action.PASS, Action.REJECT, Action.QUARANTINE]) is Action.REJECT
    assert Action.most_severe([Action.QUARANTINE, Action.PASS]) is Action.QUARANTINE
    assert Action.most_severe([]) is Action.PASS


def test_verdict_round_trip_and_primary() -> None:
    """A verdict survives to_dict/from_dict and names the finding that decided it."""
    monitor = Finding("link.external", Category.LINK_EXTERNAL, Action.QUARANTINE, "d", monitor=True)
    decisive = Finding(
        "review.removal", Category.REVIEW_REMOVAL, Action.REJECT, "Do not ask", "löschen Sie", "text/plain", "de"
    )
    verdict = Verdict(
        Action.REJECT, "amazon", (monitor, decisive), frozenset({Signal.PROACTIVE}), ("123-1234567-1234567",)
    )
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    assert verdict.primary == decisive
    assert verdict.acting_findings == (decisive,)
    assert verdict.rule_ids == ("link.external", "review.removal")
