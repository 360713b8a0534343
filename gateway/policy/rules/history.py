"""Rules that need more than the message's words.

Per-order and per-buyer history, and the "only a notice" judgement on proactive mail.

History comes from the :class:`gateway.state.State` the engine is given (a
snapshot loaded by the store before evaluation), so these stay pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gateway.model import Signal
from gateway.policy.context import EvalContext
from gateway.policy.lexicon import COMMON
from gateway.policy.rules.base import Hit, sentence_evidence
from gateway.policy.spec import RedundantMatch, RuleSpec, StateMatch


def seller_order_ids(ctx: EvalContext) -> list[str]:
    """Order ids in the seller's own text, in order, without repeats."""
    seen: list[str] = []
    for order in ctx.parsed.order_ids:
        if ctx.is_sellers_span(order.span) and order.value not in seen:
            seen.append(order.value)
    return seen


@dataclass(frozen=True, slots=True)
class StateRule:
    """Per-order and per-buyer history checks.

    ``repeat``: a second review request for an order; ``window``: a proactive
    message more than the profile's window after the order was first seen;
    ``cap``: more proactive messages to one buyer than the profile allows per period.
    """

    spec: RuleSpec
    match: StateMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """A hit naming the order or buyer and the date that makes it a violation."""
        check = self.match.check
        proactive = ctx.profile.spec.proactive
        if check == "repeat":
            if Signal.REVIEW_REQUEST not in ctx.signals:
                return []
            for order_id in seller_order_ids(ctx):
                earlier = ctx.state.review_requested(order_id)
                if earlier is not None:
                    return [Hit(f"order {order_id}: review already requested on {earlier:%Y-%m-%d}", "order history")]
            return []
        if ctx.is_reply:
            return []
        if check == "window" and proactive.window_days is not None:
            limit = timedelta(days=proactive.window_days)
            for order_id in seller_order_ids(ctx):
                first = ctx.state.order_first_seen(order_id)
                if first is not None and ctx.now - first > limit:
                    days = (ctx.now - first).days
                    return [Hit(f"order {order_id}: first seen {first:%Y-%m-%d}, {days} days ago", "order history")]
            return []
        if check == "cap" and proactive.max_per_buyer is not None and ctx.route.buyer:
            since = ctx.now - timedelta(days=proactive.period_days)
            count = ctx.state.proactive_count(ctx.route.buyer, since)
            if count >= proactive.max_per_buyer:
                return [
                    Hit(f"{count} proactive messages to this buyer in {proactive.period_days} days", "buyer history")
                ]
        return []


@dataclass(frozen=True, slots=True)
class RedundantRule:
    """A proactive message that only notifies (shipped, confirmed, thanks) with no other purpose."""

    spec: RuleSpec
    match: RedundantMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """The notice sentence, when nothing in the seller's text gives the message a purpose."""
        if ctx.is_reply:
            return []
        found: Hit | None = None
        for text in ctx.texts(["subject", "body"]):
            for language in [*text.hits]:
                if any(text.concept_spans(language, c) for c in self.match.purpose):
                    return []
                if found is None:
                    for concept in self.match.notice:
                        spans = text.concept_spans(language, concept)
                        if spans:
                            first, last = spans[0]
                            lang = None if language == COMMON else language
                            found = Hit(sentence_evidence(text, first, last), text.part.location, lang)
                            break
        return [found] if found is not None else []
