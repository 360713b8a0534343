"""What one evaluation sees: the message's texts as the seller wrote them, scanned once.

Every text rule reads the same :class:`ScannedText` list, so normalising,
tokenising and finding concepts happens once per text per message. Which texts
count as the seller's follows POLICY.md:

- the buyer's quote at the end of a reply is the buyer's and is skipped;
  a "quote" in a message that answers nothing is the seller's own text;
- text hidden by CSS, text only in the HTML part and text inside attachments
  are checked like visible text;
- the subject of a reply that keeps the buyer's subject (``Re: ...``) is the
  buyer's words, so intent rules skip it;
- the HTML rendering of the same words as the plain part is scanned once.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from functools import cached_property

from gateway.mime.normalize import normalize
from gateway.mime.types import ParsedMessage, Span, TextPart, TextSource
from gateway.model import Route, Signal
from gateway.policy.lexicon import COMMON, ConceptHits, TermIndex
from gateway.policy.spec import ProfileSpec, RuleSetting
from gateway.policy.tokens import Tokens, tokenize
from gateway.state import State

_KINDS = {
    TextSource.SUBJECT: "subject",
    TextSource.PLAIN: "body",
    TextSource.HTML: "body",
    TextSource.ATTACHMENT: "attachment",
    TextSource.ATTACHMENT_NAME: "attachment-name",
}
_SPACE = re.compile(r"\s+")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|odp|antw|r|rif|ynt|ответ|відповідь|адказ|resp)\s*(?:\[\d+\])?\s*:", re.I
)


@dataclass(frozen=True, slots=True)
class Profile:
    """A marketplace profile ready for evaluation."""

    spec: ProfileSpec

    @property
    def id(self) -> str:
        """The profile id (``amazon``, ``default``...)."""
        return self.spec.id

    def setting(self, rule_id: str) -> RuleSetting:
        """This profile's setting for ``rule_id``: later glob entries win."""
        chosen: RuleSetting = "off"
        for pattern, setting in self.spec.rules.items():
            if fnmatchcase(rule_id, pattern):
                chosen = setting
        return chosen

    def serves(self, domain: str) -> bool:
        """Whether a recipient domain belongs to this marketplace's relay."""
        domain = domain.lower().rstrip(".")
        return any(fnmatchcase(domain, pattern.lower()) for pattern in self.spec.relay_domains)

    def allows_link(self, host: str) -> bool:
        """Whether a link host is on the profile's allowlist (globs; subdomains need ``*.``)."""
        host = host.lower().rstrip(".")
        return any(fnmatchcase(host, pattern.lower()) for pattern in self.spec.links.allowed_domains)


@dataclass
class ScannedText:
    """One of the seller's texts with its tokens and concept hits."""

    index: int
    part: TextPart
    kind: str
    tokens: Tokens
    hits: ConceptHits

    def concept_spans(self, language: str, concept: str) -> list[tuple[int, int]]:
        """Spans of ``concept`` in ``language`` plus the language-independent ones."""
        own = self.hits.get(language, {}).get(concept, [])
        common = self.hits.get(COMMON, {}).get(concept, []) if language != COMMON else []
        return own + common if common else own

    @cached_property
    def dominant(self) -> str:
        """The language with the most concept hits in this text (``*`` when none)."""
        counts = {
            language: sum(len(spans) for spans in concepts.values())
            for language, concepts in self.hits.items()
            if language != COMMON
        }
        return max(counts, key=lambda lang: counts[lang]) if counts else COMMON

    def exception_spans(self, language: str, concept: str) -> list[tuple[int, int]]:
        """Spans of an exception concept (a negation...) for a match in ``language``.

        The text's dominant language counts too: a loanword ("Bonus", "Feedback")
        matches the English lexicon inside a German sentence whose "keinen" only
        German knows. Other languages do not: Italian "Non esiti a..." is a
        request, whatever French "non" means.
        """
        spans = self.concept_spans(language, concept)
        if self.dominant not in (language, COMMON):
            spans = spans + self.hits.get(self.dominant, {}).get(concept, [])
        return spans

    def token_at(self, offset: int) -> int:
        """Index of the token at or after an original-text offset."""
        folded = self.tokens.norm.from_original(offset)
        return min(bisect.bisect_left(self.tokens.ends, folded + 1), max(len(self.tokens) - 1, 0))


@dataclass
class EvalContext:
    """Everything a rule may read for one message; built by the engine, read-only to rules."""

    parsed: ParsedMessage
    route: Route
    profile: Profile
    state: State
    now: datetime
    index: TermIndex
    signals: set[Signal] = field(default_factory=set)
    defects: list[str] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        """Whether the message answers the buyer (the proactive rules do not apply)."""
        return self.parsed.is_reply

    def is_sellers(self, index: int) -> bool:
        """Whether ``texts[index]`` is the seller's own text (see the module docstring)."""
        part = self.parsed.texts[index]
        return not (part.quoted and self.parsed.is_reply)

    def is_sellers_span(self, span: Span) -> bool:
        """Whether an item found at ``span`` sits in the seller's text (markup-only items do)."""
        return span.text_index < 0 or (span.text_index < len(self.parsed.texts) and self.is_sellers(span.text_index))

    @cached_property
    def scanned(self) -> list[ScannedText]:
        """The seller's texts, scanned once, duplicates (HTML = plain) skipped."""
        out: list[ScannedText] = []
        seen: set[str] = set()
        for index, part in enumerate(self.parsed.texts):
            if not self.is_sellers(index) or not part.text.strip():
                continue
            kind = _KINDS[part.source]
            if kind == "subject" and self.parsed.is_reply and _REPLY_PREFIX.match(part.text):
                continue
            norm = normalize(part.text)
            key = _SPACE.sub(" ", norm.text).strip()
            if part.source in (TextSource.PLAIN, TextSource.HTML) and not part.hidden:
                if key in seen:
                    continue
                seen.add(key)
            tokens = tokenize(norm)
            hits, defects = self.index.find(tokens)
            self.defects.extend(defects)
            out.append(ScannedText(index, part, kind, tokens, hits))
        return out

    def texts(self, kinds: Sequence[str]) -> list[ScannedText]:
        """The scanned seller texts of the given kinds."""
        return [t for t in self.scanned if t.kind in kinds]

    @cached_property
    def ranked_languages(self) -> list[str]:
        """Languages with any concept hit in the message, most hits first."""
        counts: dict[str, int] = {}
        for text in self.scanned:
            for language, concepts in text.hits.items():
                if language != COMMON:
                    counts[language] = counts.get(language, 0) + sum(len(v) for v in concepts.values())
        return sorted(counts, key=lambda lang: -counts[lang])

    def languages(self) -> list[str]:
        """Languages with any concept hit in the message, most hits first."""
        return self.ranked_languages

    @cached_property
    def present(self) -> frozenset[str]:
        """Every concept found anywhere in the seller's texts, in any language."""
        return frozenset(c for text in self.scanned for concepts in text.hits.values() for c in concepts)
