"""What every rule type shares: the hit it reports and how evidence is quoted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.policy.context import EvalContext, ScannedText
from gateway.policy.spec import RuleSpec

#: Longest evidence quoted in a finding; the SMTP reply trims further to fit one line.
MAX_EVIDENCE = 160


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule matched: what it saw, where, and in which language's words."""

    evidence: str
    location: str
    language: str | None = None


class Rule(Protocol):
    """A compiled rule: its spec and a pure check over one message."""

    @property
    def spec(self) -> RuleSpec:
        """The rule as written in its file."""
        ...

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Every place the rule matches (the engine reports the first)."""
        ...


def clip(text: str, limit: int = MAX_EVIDENCE) -> str:
    """Collapse whitespace and shorten ``text`` to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sentence_evidence(text: ScannedText, first: int, last: int) -> str:
    """Quote the sentence around tokens ``first..last``, or a window of it when long."""
    tokens = text.tokens
    start, end = tokens.sentence_bounds(first)
    _, end = tokens.sentence_bounds(last)
    quoted = tokens.original(start, end)
    if len(quoted) > MAX_EVIDENCE:
        start, end = max(start, first - 4), min(end, last + 4)
        quoted = tokens.original(start, end)
    return clip(quoted)
