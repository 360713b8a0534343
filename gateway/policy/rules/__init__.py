"""Rule types: each ``match.type`` of a rule file maps to one class here."""

from __future__ import annotations

from gateway.policy.rules.base import Hit, Rule
from gateway.policy.rules.cooccur import CooccurRule
from gateway.policy.rules.history import RedundantRule, StateRule
from gateway.policy.rules.structure import (
    AttachmentRule,
    ContactRule,
    LinkRule,
    OrderLeakRule,
    TrackingRule,
    UnscannableRule,
)
from gateway.policy.spec import (
    AttachmentMatch,
    ContactMatch,
    CooccurMatch,
    LinkMatch,
    OrderLeakMatch,
    RedundantMatch,
    RuleSpec,
    StateMatch,
    TrackingMatch,
    UnscannableMatch,
)

__all__ = ["Hit", "Rule", "build_rule"]


def build_rule(spec: RuleSpec) -> Rule:
    """The rule object for ``spec`` (its ``match.type`` picks the class)."""
    match = spec.match
    if isinstance(match, CooccurMatch):
        return CooccurRule(spec, match)
    if isinstance(match, LinkMatch):
        return LinkRule(spec, match)
    if isinstance(match, ContactMatch):
        return ContactRule(spec, match)
    if isinstance(match, TrackingMatch):
        return TrackingRule(spec, match)
    if isinstance(match, AttachmentMatch):
        return AttachmentRule(spec, match)
    if isinstance(match, UnscannableMatch):
        return UnscannableRule(spec, match)
    if isinstance(match, OrderLeakMatch):
        return OrderLeakRule(spec, match)
    if isinstance(match, StateMatch):
        return StateRule(spec, match)
    assert isinstance(match, RedundantMatch)
    return RedundantRule(spec, match)
