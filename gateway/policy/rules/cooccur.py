"""Concept co-occurrence: the rule type behind every intent category.

A match needs one span from each group, all within ``window`` tokens and (by
default) in one sentence, none cancelled by its group's exceptions (a negation
just before an offer: "we cannot offer anything for a review") and no
``unless`` concept in that sentence. It is tried language by language, so the
finding names the language whose words matched; exceptions also count in the
text's dominant language, so a loanword cannot slip past the text's own negation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from gateway.policy.context import EvalContext, ScannedText
from gateway.policy.lexicon import COMMON
from gateway.policy.rules.base import Hit, sentence_evidence
from gateway.policy.spec import CooccurMatch, Group, Nearby, RuleSpec

# Upper bound on span combinations tried per sentence (groups x spans is tiny in
# practice; the bound keeps a hostile text from making it large).
_MAX_COMBINATIONS = 4096

Span = tuple[int, int]


def _near(text: ScannedText, language: str, nearby: Nearby, anchor_token: int, lo: int, hi: int) -> bool:
    """Whether a span of ``nearby.concepts`` lies in ``[lo, hi]`` in ``anchor_token``'s sentence."""
    sentences = text.tokens.sentences
    anchor = sentences[anchor_token]
    for concept in nearby.concepts:
        for first, last in text.exception_spans(language, concept):
            if last >= lo and first <= hi and sentences[first] == anchor:
                return True
    return False


def _candidates(text: ScannedText, language: str, group: Group) -> list[Span]:
    spans: list[Span] = []
    size = len(text.tokens)
    for concept in group.any:
        for first, last in text.concept_spans(language, concept):
            if any(_near(text, language, n, first, max(0, first - n.within), first - 1) for n in group.unless_before):
                continue
            if any(
                _near(text, language, n, last, last + 1, min(size - 1, last + n.within)) for n in group.unless_after
            ):
                continue
            needed = group.requires_before
            if needed is not None and not _near(
                text, language, needed, first, max(0, first - needed.within), first - 1
            ):
                continue
            spans.append((first, last))
    return spans


def find_cooccurrence(match: CooccurMatch, text: ScannedText, language: str) -> Span | None:
    """The first token span satisfying ``match`` in ``text`` with ``language``'s words."""
    per_group = [_candidates(text, language, group) for group in match.groups]
    if any(not spans for spans in per_group):
        return None
    sentences = text.tokens.sentences
    if match.sentence:
        # Only combinations inside one sentence can match: group spans by sentence.
        by_sentence: dict[int, list[list[Span]]] = {}
        for g, spans in enumerate(per_group):
            for span in spans:
                by_sentence.setdefault(sentences[span[0]], [[] for _ in per_group])[g].append(span)
        pools = [pools for _, pools in sorted(by_sentence.items()) if all(pools)]
    else:
        pools = [per_group]
    for pool in pools:
        for combination in itertools.islice(itertools.product(*pool), _MAX_COMBINATIONS):
            lo = min(s[0] for s in combination)
            hi = max(s[1] for s in combination)
            # The window bounds how far apart the groups' spans start; a long
            # phrase ("until you answer") does not use it up by itself.
            if max(s[0] for s in combination) - lo > match.window:
                continue
            if match.unless and _sentence_has(text, language, match.unless, lo, hi, match.sentence):
                continue
            if not _leads_sentence(text, language, lo):
                continue
            return lo, hi
    return None


def _leads_sentence(text: ScannedText, language: str, token: int) -> bool:
    """Whether ``language``'s words cover about as much of ``token``'s sentence as any other's.

    Loanwords ("Feedback", "PayPal", "Bonus") match the English lexicon inside a
    German sentence whose own words cover far more of it. One token of slack
    keeps related languages (Spanish and Portuguese share many small words) and
    stray hits ("para" is money in Turkish) from vetoing a real match.
    """
    if language == COMMON or len(text.hits) <= 2:
        return True
    start, end = text.tokens.sentence_bounds(token)
    covered: dict[str, int] = {}
    for other, concepts in text.hits.items():
        if other != COMMON:
            tokens = {
                i
                for spans in concepts.values()
                for first, last in spans
                for i in range(first, last + 1)
                if start <= i <= end
            }
            covered[other] = len(tokens)
    return covered.get(language, 0) + 1 >= max(covered.values(), default=0)


def _sentence_has(text: ScannedText, language: str, concepts: list[str], lo: int, hi: int, sentence: bool) -> bool:
    if sentence:
        start, _ = text.tokens.sentence_bounds(lo)
        _, end = text.tokens.sentence_bounds(hi)
    else:
        start, end = 0, len(text.tokens) - 1
    return any(first <= end and last >= start for c in concepts for first, last in text.exception_spans(language, c))


@dataclass(frozen=True, slots=True)
class CooccurRule:
    """A :class:`CooccurMatch` rule."""

    spec: RuleSpec
    match: CooccurMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """The first matching sentence, tried in each language found in the message."""
        present = ctx.present
        # Most messages lack some group's concepts entirely: no need to look further.
        if any(present.isdisjoint(group.any) for group in self.match.groups):
            return []
        languages = [*ctx.languages(), COMMON]
        for text in ctx.texts(self.match.texts):
            for language in languages:
                span = find_cooccurrence(self.match, text, language)
                if span is not None:
                    evidence = sentence_evidence(text, *span)
                    return [Hit(evidence, text.part.location, None if language == COMMON else language)]
        return []
