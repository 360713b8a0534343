"""Run every rule's own examples through the real parser and engine.

Each example becomes a real MIME message (subject, plain and HTML parts, the
buyer's quote, attachments, reply headers), is parsed by the same parser the
SMTP path uses and evaluated by the loaded policy. A ``hit`` example must make
its rule hit, in its own language; a ``pass`` example must not, and the whole
message must pass (pass examples are the hard cases: they must not trip any
other rule either). Signal rules record their signal instead of a finding.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from gateway.mime.types import ParsedMessage
from gateway.model import Action, Route, Verdict
from gateway.policy.engine import CompiledPolicy
from gateway.policy.lexicon import COMMON
from gateway.policy.spec import Example, MessageExample, RuleSpec
from gateway.state import EventKind, MemoryState, StateEvent

#: The order every example message is about.
EXAMPLE_ORDER = "302-1234567-1234567"
#: Recipients used for each profile (bol and walmart relay domains are per seller).
EXAMPLE_RECIPIENTS = {
    "amazon": "a1b2c3d4e5f6g7@marketplace.amazon.de",
    "ebay": "0a1b2c3d4e@members.ebay.de",
    "allegro": "kupujacy.123@allegromail.pl",
    "bol": "klant-123@relay.bol.example",
    "walmart": "buyer-123@relay.walmart.example",
    "default": "someone@private.example",
}
_SENDER = "support@seller.example"


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """The outcome of one example."""

    rule: str
    language: str  # ISO code, or "*" for language-independent examples
    expect: str  # "hit" or "pass"
    text: str  # the example as written (body, or a summary of a message example)
    ok: bool
    detail: str  # what happened when it failed


def _as_message(example: Example) -> MessageExample:
    return MessageExample(body=example) if isinstance(example, str) else example


def build_message(example: MessageExample, now_text: str) -> bytes:
    """The raw message an example stands for."""
    profile = example.profile or "amazon"
    message = EmailMessage()
    reply = example.kind == "reply"
    message["From"] = f"Seller Support <{_SENDER}>"
    message["To"] = EXAMPLE_RECIPIENTS.get(profile, EXAMPLE_RECIPIENTS["default"])
    subject = example.subject if example.subject is not None else f"Order {EXAMPLE_ORDER}"
    message["Subject"] = f"Re: {subject}" if reply and example.subject is None else subject
    message["Date"] = now_text
    message["Message-ID"] = "<example.1@seller.example>"
    if reply:
        message["In-Reply-To"] = "<buyer.1@marketplace.example>"
        message["References"] = "<buyer.1@marketplace.example>"
    for name, value in example.headers.items():
        message[name] = value
    body = example.body
    if example.quote:
        quoted = "\n".join(f"> {line}" if line else ">" for line in example.quote.splitlines())
        body = f"{body}\n\nOn Mon, 2 Nov 2026 at 10:15, Buyer <{message['To']}> wrote:\n{quoted}\n"
    message.set_content(body)
    if example.html is not None:
        message.add_alternative(example.html, subtype="html")
    for attachment in example.attachments:
        if attachment.text is not None:
            content = attachment.text.encode("utf-8")
        elif attachment.base64 is not None:
            content = base64.b64decode(attachment.base64)
        else:
            content = b"0" * (attachment.size or 0)
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            content, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
        )
    return message.as_bytes()


def _state(example: MessageExample, policy: CompiledPolicy, buyer: str) -> MemoryState:
    now = policy.clock()
    kinds = {
        "review_request": EventKind.REVIEW_REQUEST,
        "proactive": EventKind.PROACTIVE,
        "order_seen": EventKind.ORDER_SEEN,
    }
    return MemoryState(
        StateEvent(
            kinds[event.event], buyer if event.key == "buyer" else event.key, now - timedelta(days=event.days_ago)
        )
        for event in example.history
    )


def evaluate_example(
    policy: CompiledPolicy, parse: Callable[[bytes], ParsedMessage], example: Example
) -> tuple[ParsedMessage, Verdict]:
    """Build, parse and evaluate one example."""
    message = _as_message(example)
    profile = message.profile or "amazon"
    recipient = EXAMPLE_RECIPIENTS.get(profile, EXAMPLE_RECIPIENTS["default"])
    parsed = parse(build_message(message, format_datetime(policy.clock())))
    route = policy.route([recipient])
    if route.profile != profile:
        # bol and walmart have no shipped relay domain: evaluate under the named profile.
        route = Route(profile, route.upstream, (recipient,), profile != "default", route.max_message_size)
    verdict = policy.evaluate(parsed, route, _state(message, policy, recipient.lower()))
    return parsed, verdict


def _summary(example: Example) -> str:
    if isinstance(example, str):
        return example
    text = example.body or example.html or ""
    names = ", ".join(a.filename for a in example.attachments)
    return f"{text} [{names}]" if names else text


def _judge(rule: RuleSpec, language: str, expect: str, verdict: Verdict) -> tuple[bool, str]:
    if rule.signal is not None:
        present = rule.signal in verdict.signals
        if expect == "hit":
            return present, "" if present else f"signal {rule.signal.value} not recorded"
        return not present, "" if not present else f"signal {rule.signal.value} recorded"
    own = [f for f in verdict.findings if f.rule == rule.id]
    if expect == "hit":
        if not own:
            others = ", ".join(f.rule for f in verdict.findings) or "nothing"
            return False, f"did not hit (found: {others})"
        finding = own[0]
        if language != COMMON and finding.language not in (language, None):
            return False, f"hit in {finding.language}, not {language}: {finding.evidence!r}"
        return True, ""
    if own:
        return False, f"hit: {own[0].evidence!r}"
    if verdict.action is not Action.PASS:
        acting = "; ".join(f"{f.rule}: {f.evidence!r}" for f in verdict.acting_findings)
        return False, f"message not passed ({verdict.action.value}): {acting}"
    return True, ""


def _cases(policy: CompiledPolicy) -> Iterator[tuple[RuleSpec, str, str, Example]]:
    rules = {rule.id: rule for rule in policy.specs.rules}
    for rule in policy.specs.rules:
        if rule.examples is not None:
            for example in rule.examples.hit:
                yield rule, COMMON, "hit", example
            for example in rule.examples.pass_:
                yield rule, COMMON, "pass", example
    for language, lexicon in sorted(policy.specs.lexicons.items()):
        for rule_id, examples in lexicon.examples.items():
            known = rules.get(rule_id)
            if known is None:
                continue  # reported by lint
            for example in examples.hit:
                yield known, language, "hit", example
            for example in examples.pass_:
                yield known, language, "pass", example


def run_examples(
    policy: CompiledPolicy,
    parse: Callable[[bytes], ParsedMessage],
    *,
    rule_filter: str | None = None,
    language_filter: str | None = None,
) -> list[ExampleResult]:
    """Run every example (optionally of one rule id prefix / one language)."""
    results = []
    for rule, language, expect, example in _cases(policy):
        if rule_filter and not (rule.id == rule_filter or rule.id.startswith(rule_filter + ".")):
            continue
        if language_filter and language not in (language_filter, COMMON):
            continue
        if not rule.enabled:
            continue
        _, verdict = evaluate_example(policy, parse, example)
        ok, detail = _judge(rule, language, expect, verdict)
        results.append(ExampleResult(rule.id, language, expect, _summary(example), ok, detail))
    return results
