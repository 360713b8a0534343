"""``gateway policies lint``: check the policy files beyond what loading checks.

Loading already refuses malformed files, unknown keys and categories, and
duplicate rule ids. Lint adds the cross-references and the quality bar:

- every concept a rule uses is defined for every one of the 13 languages
  (an explicit empty list says "this language has no such words");
- every rule has at least three ``hit`` and three ``pass`` examples in every
  language it claims (a rule that uses no concept claims none and keeps
  language-independent examples in its rule file);
- examples name rules that exist; profiles name rules that exist;
- every regular expression compiles and cannot backtrack catastrophically:
  a static check for nested quantifiers, and a run against adversarial input
  under a timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from gateway.policy.engine import CompiledPolicy
from gateway.policy.lexicon import COMMON, Term
from gateway.policy.spec import (
    LANGUAGES,
    ContactMatch,
    CooccurMatch,
    RedundantMatch,
    RuleSpec,
    TrackingMatch,
)

#: Minimum examples of each kind per claimed language (the issue's quality bar).
MIN_EXAMPLES = 3
#: Time a pattern may take on adversarial input before it is called catastrophic.
BACKTRACK_TIMEOUT = 0.2
# A group repeated without bound whose body is itself quantified: (a+)+, (\w*)*,
# (x+y?){2,}. A bounded repeat ((\s+\w+){0,2}) cannot blow up exponentially, and
# every pattern also runs against adversarial input under a timeout.
_NESTED = re.compile(r"\((?:\?:)?[^()]*[+*}][^()]*\)(?:[+*]|\{\d*,\})")


@dataclass(frozen=True, slots=True)
class Problem:
    """One lint finding; errors fail the lint, warnings do not.

    ``serving`` marks errors that make a policy unsafe to run (an unknown
    concept, a dangerous pattern), as opposed to unfinished (missing examples):
    a reload refuses the former and only logs the latter.
    """

    level: str  # "error" | "warning"
    where: str
    message: str
    serving: bool = False

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def rule_concepts(rule: RuleSpec) -> set[str]:
    """Every concept a rule refers to."""
    match = rule.match
    concepts: set[str] = set()
    if isinstance(match, CooccurMatch):
        for group in match.groups:
            concepts.update(group.any)
            for nearby in [*group.unless_before, *group.unless_after]:
                concepts.update(nearby.concepts)
            if group.requires_before is not None:
                concepts.update(group.requires_before.concepts)
        concepts.update(match.unless)
    elif isinstance(match, ContactMatch):
        concepts.update(match.excused_by)
    elif isinstance(match, TrackingMatch):
        concepts.update(match.unsubscribe)
    elif isinstance(match, RedundantMatch):
        concepts.update(match.notice)
        concepts.update(match.purpose)
    return concepts


def _adversarial(pattern: str) -> list[str]:
    literals = "".join(sorted(set(re.sub(r"\\.|[\[\]()?*+{}|^$.]", "", pattern)))) or "a"
    return [
        "a" * 4000 + "!",
        " " * 4000 + "!",
        "1" * 4000 + "x",
        (literals * (4000 // max(len(literals), 1) + 1))[:4000] + "\u2603",
        "5 " * 2000,
    ]


def check_pattern(term: Term) -> str | None:
    """Why a regular-expression term is unsafe, or ``None``."""
    assert term.pattern is not None
    source = term.pattern.pattern
    if _NESTED.search(source):
        return "nested quantifiers can backtrack catastrophically"
    for text in _adversarial(source):
        try:
            term.pattern.search(text, timeout=BACKTRACK_TIMEOUT)
        except TimeoutError:
            return f"takes over {BACKTRACK_TIMEOUT}s on adversarial input"
    return None


def lint(policy: CompiledPolicy) -> list[Problem]:
    """Every problem in a loaded policy (loading has already validated the files)."""
    specs = policy.specs
    problems: list[Problem] = []
    rules = {rule.id: rule for rule in specs.rules}
    common = specs.lexicons.get(COMMON)
    common_concepts = set(common.concepts) if common else set()
    defined_anywhere = set().union(*(set(lex.concepts) for lex in specs.lexicons.values()))
    used: set[str] = set()

    for language in LANGUAGES:
        if language not in specs.lexicons:
            problems.append(
                Problem("error", f"lexicon/{language}.yaml", "missing: every rule must work in this language")
            )

    for rule in specs.rules:
        concepts = rule_concepts(rule)
        used.update(concepts)
        for concept in sorted(concepts - defined_anywhere):
            problems.append(Problem("error", f"rule {rule.id}", f"unknown concept {concept!r}", serving=True))
        if not concepts:
            examples = rule.examples
            hits = len(examples.hit) if examples else 0
            passes = len(examples.pass_) if examples else 0
            if rule.enabled and (hits < MIN_EXAMPLES or passes < MIN_EXAMPLES):
                problems.append(
                    Problem(
                        "error",
                        f"rule {rule.id}",
                        f"needs {MIN_EXAMPLES} hit and {MIN_EXAMPLES} pass examples (has {hits} and {passes})",
                    )
                )
            continue
        for language in LANGUAGES:
            lexicon = specs.lexicons.get(language)
            if lexicon is None:
                continue
            missing = sorted(c for c in concepts if c not in lexicon.concepts and c not in common_concepts)
            if missing:
                problems.append(
                    Problem(
                        "error",
                        f"lexicon/{language}.yaml",
                        f"rule {rule.id} needs concept(s) {', '.join(missing)} "
                        "(an empty list if the language has none)",
                    )
                )
            examples = lexicon.examples.get(rule.id)
            hits = len(examples.hit) if examples else 0
            passes = len(examples.pass_) if examples else 0
            if rule.enabled and (hits < MIN_EXAMPLES or passes < MIN_EXAMPLES):
                problems.append(
                    Problem(
                        "error",
                        f"lexicon/{language}.yaml",
                        f"rule {rule.id} needs {MIN_EXAMPLES} hit and {MIN_EXAMPLES} pass examples "
                        f"(has {hits} and {passes})",
                    )
                )

    for language, lexicon in sorted(specs.lexicons.items()):
        for rule_id in sorted(set(lexicon.examples) - set(rules)):
            problems.append(Problem("error", f"lexicon/{language}.yaml", f"examples for unknown rule {rule_id!r}"))
        for concept, terms in lexicon.concepts.items():
            if concept not in used:
                problems.append(
                    Problem("warning", f"lexicon/{language}.yaml", f"concept {concept!r} is not used by any rule")
                )
            seen: set[str] = set()
            for term in terms:
                if term in seen:
                    problems.append(
                        Problem("warning", f"lexicon/{language}.yaml", f"{concept}: duplicate term {term!r}")
                    )
                seen.add(term)

    for profile_id, profile in sorted(specs.profiles.items()):
        for pattern in profile.rules:
            if not any(ch in pattern for ch in "*?[") and pattern not in rules:
                problems.append(Problem("error", f"marketplaces/{profile_id}.yaml", f"rules: unknown rule {pattern!r}"))
            elif not any(fnmatchcase(rule_id, pattern) for rule_id in rules):
                problems.append(
                    Problem("warning", f"marketplaces/{profile_id}.yaml", f"rules: {pattern!r} matches no rule")
                )

    for pattern_term in policy.index.regex_terms:
        reason = check_pattern(pattern_term)
        if reason is not None:
            language = pattern_term.language
            where = "lexicon/common.yaml" if language == COMMON else f"lexicon/{language}.yaml"
            detail = f"{pattern_term.concept}: {pattern_term.source!r}: {reason}"
            problems.append(Problem("error", where, detail, serving=True))
    return problems


def fatal(problems: list[Problem]) -> list[Problem]:
    """The problems that make a policy unsafe to serve."""
    return [p for p in problems if p.level == "error" and p.serving]


__all__ = ["MIN_EXAMPLES", "Problem", "check_pattern", "fatal", "lint", "rule_concepts"]
