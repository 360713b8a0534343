"""The engine: co-occurrence semantics, quoted and hidden text, profiles, monitor mode, routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import RouteConfig
from gateway.mime.types import ParsedMessage, TextPart, TextSource
from gateway.model import Action, Category, Signal
from gateway.policy.engine import CompiledPolicy
from gateway.policy.loader import load_specs
from gateway.state import MemoryState
from tests.unit.policy.conftest import AMAZON_PROFILE, DEFAULT_PROFILE, PolicyDir

REMOVAL: dict[str, Any] = {
    "id": "review.removal",
    "category": "review.removal",
    "action": "reject",
    "description": "Do not ask to remove a review",
    "match": {
        "type": "cooccur",
        "groups": [
            ["review"],
            {"any": ["change"], "unless_before": [{"concepts": ["negation"], "within": 4}]},
            ["ask"],
        ],
        "window": 8,
    },
}
LEXICONS: dict[str, dict[str, Any]] = {
    "en": {
        "concepts": {"review": ["review"], "change": ["remove", "delete"], "ask": ["please"], "negation": ["never"]}
    },
    "de": {"concepts": {"review": ["bewertung"], "change": ["löschen"], "ask": ["bitte"], "negation": ["nie"]}},
}
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def message(body: str, *, reply: bool = True, html: str | None = None, quote: str | None = None) -> ParsedMessage:
    texts = [TextPart("Subject", TextSource.SUBJECT), TextPart(body, TextSource.PLAIN, "1")]
    if html is not None:
        texts.append(TextPart(html, TextSource.HTML, "2", hidden=True))
    if quote is not None:
        texts.append(TextPart(quote, TextSource.PLAIN, "1", quoted=True))
    return ParsedMessage(subject="Subject", is_reply=reply, texts=tuple(texts))


def compiled(policy_dir: PolicyDir, rules: list[dict[str, Any]] | None = None, **kwargs: Any) -> CompiledPolicy:
    root = policy_dir(rules or [REMOVAL], LEXICONS)
    return CompiledPolicy(load_specs(root), clock=lambda: NOW, **kwargs)


def evaluate(policy: CompiledPolicy, parsed: ParsedMessage, recipient: str = "x@marketplace.amazon.de") -> Any:
    return policy.evaluate(parsed, policy.route([recipient]), MemoryState())


def test_finding_names_rule_language_evidence_and_location(policy_dir: PolicyDir) -> None:
    """A hit is a finding with the rule, its language, the original words and where they were."""
    policy = compiled(policy_dir)
    verdict = evaluate(policy, message("Hello. Bitte LÖSCHEN Sie die Bewertung. Danke"))
    assert verdict.action is Action.REJECT
    (finding,) = verdict.findings
    assert (finding.rule, finding.category, finding.language) == ("review.removal", Category.REVIEW_REMOVAL, "de")
    assert finding.evidence == "Bitte LÖSCHEN Sie die Bewertung"
    assert finding.location == "text/plain"


def test_groups_must_share_a_sentence_and_the_window(policy_dir: PolicyDir) -> None:
    """Concepts in different sentences, or too far apart, do not match."""
    policy = compiled(policy_dir)
    assert (
        evaluate(policy, message("Please wait. We will remove the old stock. Thanks for the review.")).action
        is Action.PASS
    )
    far = "Please, as we said many times before in several of our messages, remove the review"
    assert evaluate(policy, message(far)).action is Action.PASS
    assert evaluate(policy, message("Please remove the review")).action is Action.REJECT


def test_negation_before_the_verb_cancels(policy_dir: PolicyDir) -> None:
    """A negation just before the change verb cancels the match."""
    policy = compiled(policy_dir)
    assert evaluate(policy, message("Please, we never remove a review.")).action is Action.PASS


def test_languages_do_not_mix(policy_dir: PolicyDir) -> None:
    """Words of different languages do not make a match together."""
    policy = compiled(policy_dir)
    assert evaluate(policy, message("Bitte remove the Bewertung")).action is Action.PASS


def test_trailing_buyer_quote_is_not_the_seller_s(policy_dir: PolicyDir) -> None:
    """The buyer's quote in a reply is skipped; in a proactive message it counts."""
    policy = compiled(policy_dir)
    quoted = message("Thank you for your message.", quote="> please remove the review, I said")
    assert evaluate(policy, quoted).action is Action.PASS
    fake_quote = message("Thank you.", reply=False, quote="> please remove the review")
    assert evaluate(policy, fake_quote).action is Action.REJECT


def test_hidden_text_is_checked(policy_dir: PolicyDir) -> None:
    """Text hidden by CSS is checked like visible text and the finding says so."""
    policy = compiled(policy_dir)
    verdict = evaluate(policy, message("Thanks for your order.", html="please delete the review"))
    assert verdict.action is Action.REJECT
    assert verdict.findings[0].location == "text/html (hidden)"


def test_profile_overrides_and_monitor(policy_dir: PolicyDir) -> None:
    """A profile can soften a rule, turn it off or put it in monitor mode; global monitor logs only."""
    body = message("Please remove the review")
    for setting, action, monitor in [("quarantine", Action.QUARANTINE, False), ("monitor", Action.PASS, True)]:
        profile = {**AMAZON_PROFILE, "rules": {"*": "on", "review.*": setting}}
        root = policy_dir([REMOVAL], LEXICONS, profiles=[DEFAULT_PROFILE, profile])
        verdict = evaluate(CompiledPolicy(load_specs(root)), body)
        assert verdict.action is action
        assert verdict.findings[0].monitor is monitor
    off = {**AMAZON_PROFILE, "rules": {"*": "on", "review.removal": "off"}}
    root = policy_dir([REMOVAL], LEXICONS, profiles=[DEFAULT_PROFILE, off])
    assert evaluate(CompiledPolicy(load_specs(root)), body).findings == ()
    everything = compiled(policy_dir, monitor=True)
    verdict = evaluate(everything, body)
    assert verdict.action is Action.PASS
    assert verdict.findings[0].monitor


def test_routing_by_recipient_domain_and_config_routes(policy_dir: PolicyDir) -> None:
    """The recipient's domain picks the profile; config routes add domains and upstreams."""
    policy = compiled(policy_dir, routes=[RouteConfig(profile="amazon", domains=["relay.example"], upstream="amz")])
    amazon = policy.route(["abc@marketplace.amazon.co.uk"])
    assert (amazon.profile, amazon.upstream, amazon.is_marketplace) == ("amazon", "amz", True)
    assert policy.route(["abc@relay.example"]).profile == "amazon"
    private = policy.route(["someone@gmail.com"])
    assert (private.profile, private.is_marketplace) == ("default", False)


def test_evaluation_is_deterministic_and_records_signals(policy_dir: PolicyDir) -> None:
    """The same input gives the same verdict; proactive mail carries the proactive signal."""
    policy = compiled(policy_dir)
    first = evaluate(policy, message("Please remove the review", reply=False))
    second = evaluate(policy, message("Please remove the review", reply=False))
    assert first == second
    assert Signal.PROACTIVE in first.signals


def test_state_rules_read_history(policy_dir: PolicyDir, tmp_path: Path) -> None:
    """review.repeat hits when the order already had a review request."""
    from gateway.mime.types import OrderId, Span
    from gateway.state import EventKind, StateEvent

    rules: list[dict[str, Any]] = [
        {
            "id": "signal.review_request",
            "signal": "review_request",
            "description": "A review request",
            "match": {"type": "cooccur", "groups": [["review"], ["ask"]], "window": 5},
        },
        {
            "id": "review.repeat",
            "category": "review.repeat",
            "description": "Only one review request per order",
            "match": {"type": "state", "check": "repeat"},
        },
    ]
    policy = compiled(policy_dir, rules)
    parsed = ParsedMessage(
        texts=(
            TextPart("Order 302-1234567-1234567", TextSource.SUBJECT),
            TextPart("Please leave a review", TextSource.PLAIN),
        ),
        order_ids=(OrderId("amazon", "302-1234567-1234567", Span(0, 6, 25)),),
    )
    route = policy.route(["x@marketplace.amazon.de"])
    assert policy.evaluate(parsed, route, MemoryState()).action is Action.PASS
    earlier = MemoryState([StateEvent(EventKind.REVIEW_REQUEST, "302-1234567-1234567", NOW)])
    verdict = policy.evaluate(parsed, route, earlier)
    assert verdict.action is Action.REJECT
    assert verdict.findings[0].rule == "review.repeat"
    assert verdict.order_ids == ("302-1234567-1234567",)


def test_needs_follow_the_profile_s_active_rules(policy_dir: PolicyDir) -> None:
    """A profile with no active rule needs no content; state is needed only for stateful rules."""
    state_rule: dict[str, Any] = {
        "id": "review.repeat",
        "category": "review.repeat",
        "description": "Only one review request per order",
        "match": {"type": "state", "check": "repeat"},
    }
    policy = compiled(policy_dir, [REMOVAL, state_rule])
    amazon = policy.needs("amazon")
    assert (amazon.content, amazon.state) == (True, True)
    default = policy.needs("default")  # "*": off
    assert (default.content, default.state) == (False, False)
    only_text = compiled(policy_dir, [REMOVAL]).needs("amazon")
    assert (only_text.content, only_text.state) == (True, False)
    assert amazon.buyer_period is None  # review.repeat reads orders, never the buyer's history


def test_buyer_history_is_needed_over_the_cap_period_only(policy_dir: PolicyDir) -> None:
    """Only an active cap with a maximum reads per-buyer history, and only over the profile's period_days."""
    cap: dict[str, Any] = {
        "id": "timing.cap",
        "category": "timing.window",
        "description": "Too many proactive messages to one buyer",
        "match": {"type": "state", "check": "cap"},
    }
    capped = {**AMAZON_PROFILE, "proactive": {"max_per_buyer": 5, "period_days": 14}}
    uncapped = {**AMAZON_PROFILE, "proactive": {"period_days": 14}}
    root = policy_dir([REMOVAL, cap], LEXICONS, profiles=[DEFAULT_PROFILE, capped])
    assert CompiledPolicy(load_specs(root)).needs("amazon").buyer_period == timedelta(days=14)
    root = policy_dir([REMOVAL, cap], LEXICONS, profiles=[DEFAULT_PROFILE, uncapped])
    assert CompiledPolicy(load_specs(root)).needs("amazon").buyer_period is None
    off = {**capped, "rules": {"*": "on", "timing.cap": "off"}}
    root = policy_dir([REMOVAL, cap], LEXICONS, profiles=[DEFAULT_PROFILE, off])
    assert CompiledPolicy(load_specs(root)).needs("amazon").buyer_period is None
