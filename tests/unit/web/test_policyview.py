"""The policy page's data: loaded rules, their effect per profile, and their examples per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.policy.holder import build_policy
from gateway.policy.spec import MessageExample
from gateway.web.policyview import example_line, find_rule, rule_examples, summarize
from tests.unit.policy.conftest import AMAZON_PROFILE, DEFAULT_PROFILE, write_policy
from tests.webkit import EXAMPLE_LEXICONS, RULE

EBAY: dict[str, Any] = {"id": "ebay", "name": "eBay", "relay_domains": ["members.ebay.*"], "rules": {"*": "on"}}
EBAY_SOFT: dict[str, Any] = {**EBAY, "rules": {"*": "on", "review.removal*": "quarantine"}}
SIGNAL: dict[str, Any] = {
    "id": "signal.review_request",
    "description": "Records that a review was requested for an order",
    "signal": "review_request",
    "match": {"type": "cooccur", "groups": [["review"], ["ask"]]},
}


def test_summary_lists_rules_profiles_and_effects(tmp_path: Path) -> None:
    """Each rule's kind, languages and counts; per profile, what it does (on means the rule's action)."""
    root = write_policy(
        tmp_path / "p",
        [RULE, {**SIGNAL, "enabled": False}],
        EXAMPLE_LEXICONS,
        [DEFAULT_PROFILE, AMAZON_PROFILE, EBAY_SOFT],
    )
    summary = summarize(build_policy(root))
    removal, signal = summary.rules
    assert (removal.id, removal.kind, removal.category, removal.action) == (
        "review.removal",
        "review.removal",
        "review.removal",
        "reject",
    )
    assert removal.languages == ("any", "de", "en")
    assert (removal.hit_count, removal.pass_count) == (3, 1)
    assert dict(removal.settings) == {"amazon": "reject", "default": "off", "ebay": "quarantine"}
    assert (signal.kind, signal.category, signal.enabled) == ("signal:review_request", "", False)
    assert [p.id for p in summary.profiles] == ["amazon", "default", "ebay"]
    assert summary.profiles[0].relay_domains == ("marketplace.amazon.*",)
    assert summary.lexicons == ("de", "en")
    assert len(summary.digest) == 64


def test_monitor_rules_show_monitor_where_they_are_on(tmp_path: Path) -> None:
    """A rule in monitor mode is "monitor" in the profiles that have it on."""
    root = write_policy(tmp_path / "p", [{**RULE, "monitor": True}], EXAMPLE_LEXICONS)
    [row] = summarize(build_policy(root)).rules
    assert row.monitor
    assert dict(row.settings) == {"amazon": "monitor", "default": "off"}


def test_examples_grouped_by_language_with_message_details(tmp_path: Path) -> None:
    """Language-independent examples come first as "any"; message examples keep subject and file names."""
    policy = build_policy(write_policy(tmp_path / "p", [RULE], EXAMPLE_LEXICONS))
    groups = rule_examples(policy, "review.removal")
    assert [g.language for g in groups] == ["any", "de", "en"]
    [message] = groups[0].hit
    assert (message.text, message.subject, message.attachments) == (
        "Please remove your review.",
        "Order 302-1234567-1234567",
        ("photo.png",),
    )
    assert [e.text for e in groups[2].passes] == ["Thanks for your review."]
    assert rule_examples(policy, "no.such") == ()
    assert find_rule(policy, "no.such") is None


def test_example_line_summarises_long_and_quoted_examples() -> None:
    """Whitespace is collapsed, long text cut with an ellipsis, a quoted buyer message marked."""
    assert example_line("  two\n\nlines  ").text == "two lines"
    long = example_line("word " * 200)
    assert len(long.text) == 300
    assert long.text.endswith("…")
    quoted = example_line(MessageExample(body="Thanks!", quote="Please fix it", kind="proactive", note="why"))
    assert (quoted.text, quoted.kind, quoted.note) == ("Thanks! [quoting: Please fix it]", "proactive", "why")
    html_only = example_line(MessageExample(html="<p>Hello</p>"))
    assert html_only.text == "<p>Hello</p>"  # shown as text; the template escapes it
