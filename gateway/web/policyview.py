"""What the policy page shows, read from the running policy: rules, profiles and examples.

The console lists the rules that are loaded now (after local overrides), not
the files on disk: that is what decides mail. Each rule's examples come from
the rule itself (language-independent ones) and from every lexicon (one set
per language); they are summarised to one line of text here, so the template
never handles the spec models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.policy.engine import CompiledPolicy
from gateway.policy.lexicon import COMMON
from gateway.policy.spec import Example, ExampleSet, MessageExample, RuleSpec

#: How the page names the language of language-independent examples.
ANY_LANGUAGE = "any"

_SUMMARY_MAX = 300  # characters of one example shown in the list (the rest is cut with an ellipsis)


@dataclass(frozen=True, slots=True)
class ExampleLine:
    """One example as one line of text, with what it carries besides the text.

    Attributes:
        text: the sentence, or the message body (HTML when there is no plain body).
        subject: the example message's subject, if it sets one.
        attachments: the attached files' names.
        note: the author's note on why it is an example.
        kind: ``reply`` or ``proactive`` (a message the seller starts).
    """

    text: str
    subject: str = ""
    attachments: tuple[str, ...] = ()
    note: str = ""
    kind: str = "reply"


@dataclass(frozen=True, slots=True)
class LanguageExamples:
    """A rule's examples in one language (``any`` for language-independent ones)."""

    language: str
    hit: tuple[ExampleLine, ...]
    passes: tuple[ExampleLine, ...]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One loaded rule as the policy page lists it.

    Attributes:
        id: the rule id.
        description: the one-line description agents see.
        kind: the category, or ``signal:<name>`` for rules that only record a fact.
        category: the category value (empty for signal rules), for the decision-log link.
        action: what the rule asks for by default (``reject`` or ``quarantine``).
        monitor: findings are logged but do not act.
        enabled: the rule runs at all.
        scope: ``all``, ``reply`` or ``proactive`` messages.
        match: the kind of matcher (``cooccur``, ``links``...).
        languages: languages with examples (``any`` first when it has language-independent ones).
        hit_count, pass_count: how many examples of each kind exist over all languages.
        settings: what the rule does in each marketplace profile (``reject``, ``quarantine``, ``monitor``,
            ``off``).
    """

    id: str
    description: str
    kind: str
    category: str
    action: str
    monitor: bool
    enabled: bool
    scope: str
    match: str
    languages: tuple[str, ...]
    hit_count: int
    pass_count: int
    settings: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One marketplace profile: id, name, the recipient domains it serves, whether it only monitors."""

    id: str
    name: str
    description: str
    relay_domains: tuple[str, ...]
    monitor: bool


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """The running policy as the page shows it."""

    digest: str
    monitor: bool
    sources: int
    profiles: tuple[ProfileRow, ...]
    rules: tuple[RuleRow, ...]
    lexicons: tuple[str, ...]


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def example_line(example: Example) -> ExampleLine:
    """One example summarised for display (attachment bytes are never shown, only names)."""
    if isinstance(example, str):
        return ExampleLine(text=_shorten(example))
    assert isinstance(example, MessageExample)
    text = example.body or example.html or ""
    if example.quote:
        text += f" [quoting: {example.quote}]"
    return ExampleLine(
        text=_shorten(text),
        subject=_shorten(example.subject or ""),
        attachments=tuple(a.filename for a in example.attachments),
        note=_shorten(example.note),
        kind=example.kind,
    )


def _sets(policy: CompiledPolicy, rule: RuleSpec) -> list[tuple[str, ExampleSet]]:
    """The rule's example sets as ``(language, set)``, language-independent first, then by code."""
    found: list[tuple[str, ExampleSet]] = []
    if rule.examples is not None:
        found.append((ANY_LANGUAGE, rule.examples))
    for code, lexicon in sorted(policy.specs.lexicons.items(), key=lambda item: (item[0] != COMMON, item[0])):
        examples = lexicon.examples.get(rule.id)
        if examples is not None:
            found.append((ANY_LANGUAGE if code == COMMON else code, examples))
    return found


def rule_examples(policy: CompiledPolicy, rule_id: str) -> tuple[LanguageExamples, ...]:
    """Every example of ``rule_id``, grouped by language (language-independent ones merged as ``any``)."""
    rule = find_rule(policy, rule_id)
    if rule is None:
        return ()
    merged: dict[str, tuple[list[ExampleLine], list[ExampleLine]]] = {}
    for language, examples in _sets(policy, rule):
        hit, passes = merged.setdefault(language, ([], []))
        hit.extend(example_line(e) for e in examples.hit)
        passes.extend(example_line(e) for e in examples.pass_)
    return tuple(LanguageExamples(lang, tuple(hit), tuple(passes)) for lang, (hit, passes) in merged.items())


def find_rule(policy: CompiledPolicy, rule_id: str) -> RuleSpec | None:
    """The loaded rule with this id, if any."""
    return next((r for r in policy.specs.rules if r.id == rule_id), None)


def _effective(setting: str, rule: RuleSpec) -> str:
    """A profile's setting as what happens: ``on`` is the rule's own action (or monitor)."""
    if setting != "on":
        return setting
    return "monitor" if rule.monitor else rule.action


def rule_row(policy: CompiledPolicy, rule: RuleSpec) -> RuleRow:
    """The policy page's row for one loaded rule."""
    sets = _sets(policy, rule)
    if rule.category is not None:
        kind = rule.category.value
    else:
        kind = f"signal:{rule.signal.value}" if rule.signal is not None else ""
    return RuleRow(
        id=rule.id,
        description=rule.description,
        kind=kind,
        category=rule.category.value if rule.category is not None else "",
        action=rule.action,
        monitor=rule.monitor,
        enabled=rule.enabled,
        scope=rule.scope,
        match=rule.match.type,
        languages=tuple(dict.fromkeys(language for language, _ in sets)),
        hit_count=sum(len(s.hit) for _, s in sets),
        pass_count=sum(len(s.pass_) for _, s in sets),
        settings={pid: _effective(profile.setting(rule.id), rule) for pid, profile in sorted(policy.profiles.items())},
    )


def summarize(policy: CompiledPolicy) -> PolicySummary:
    """The running policy as rows for the policy page."""
    profiles = tuple(
        ProfileRow(
            id=pid,
            name=profile.spec.name,
            description=profile.spec.description,
            relay_domains=tuple(profile.spec.relay_domains),
            monitor=profile.spec.monitor,
        )
        for pid, profile in sorted(policy.profiles.items())
    )
    return PolicySummary(
        digest=policy.specs.digest,
        monitor=policy.monitor,
        sources=len(policy.specs.sources),
        profiles=profiles,
        rules=tuple(rule_row(policy, rule) for rule in policy.specs.rules),
        lexicons=tuple(sorted(code for code in policy.specs.lexicons if code != COMMON)),
    )
