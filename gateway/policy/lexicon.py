"""Lexicon terms and the index that finds every language's concepts in one pass.

A lexicon (``policies/lexicon/<lang>.yaml``) lists, per concept, the terms
that express it. A term is a phrase of one or more pieces separated by spaces:

==========  ==========================================================
``word``     the token exactly
``word*``    a token starting with ``word`` (inflection: ``löschen*``)
``*word``    a token ending with ``word`` (compounds: ``*bewertung``)
``*word*``   a token containing ``word``
``_``        any one token
``..``       zero to three tokens (``take .. down``)
``re:PAT``   (whole term) a regular expression over the normalised text
==========  ==========================================================

Terms are normalised exactly like message text (lower case, no diacritics...),
so a lexicon may be written naturally. Phrases never cross a sentence end.
"""

from __future__ import annotations

import bisect
import enum
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex

from gateway.mime.normalize import normalize
from gateway.policy.tokens import Tokens, leet_variants, trimmed_variants

#: Language code of concepts shared by every language (digits, symbols, brands).
COMMON = "*"
#: Longest time one regular-expression term may spend on one text (seconds).
REGEX_TIMEOUT = 0.05
_MAX_GAP = 3
_PIECE_TOKEN = re.compile(r"[^\W_](?:[^\W_]|['@$](?=[^\W_]))*")


class TermError(ValueError):
    """A term that cannot be compiled; the message says why."""


class PieceKind(enum.Enum):
    """How one piece of a phrase matches a token."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    INFIX = "infix"
    ANY = "any"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class Piece:
    """One position of a phrase."""

    kind: PieceKind
    text: str = ""

    def matches(self, word: str) -> bool:
        """Whether ``word`` (a normalised token) fits this piece."""
        kind = self.kind
        if kind is PieceKind.EXACT:
            return word == self.text
        if kind is PieceKind.PREFIX:
            return word.startswith(self.text)
        if kind is PieceKind.SUFFIX:
            return word.endswith(self.text)
        if kind is PieceKind.INFIX:
            return self.text in word
        return kind is PieceKind.ANY


@dataclass(frozen=True, slots=True)
class Term:
    """A compiled lexicon term: a phrase, or a regular expression when ``pattern`` is set."""

    language: str
    concept: str
    source: str
    pieces: tuple[Piece, ...] = ()
    pattern: regex.Pattern[str] | None = None


def _pieces_of(chunk: str) -> list[Piece]:
    if chunk == "_":
        return [Piece(PieceKind.ANY)]
    if chunk == "..":
        return [Piece(PieceKind.GAP)]
    lead = chunk.startswith("*")
    tail = chunk.endswith("*") and len(chunk) > 1
    core = normalize(chunk.strip("*")).text
    words = _PIECE_TOKEN.findall(core)
    if not words:
        raise TermError(f"{chunk!r} has no word characters")
    pieces = [Piece(PieceKind.EXACT, w) for w in words]
    first, last = pieces[0], pieces[-1]
    if len(pieces) == 1:
        kind = {(True, True): PieceKind.INFIX, (True, False): PieceKind.SUFFIX, (False, True): PieceKind.PREFIX}
        chosen = kind.get((lead, tail), PieceKind.EXACT)
        return [Piece(chosen, first.text)]
    if lead:
        pieces[0] = Piece(PieceKind.SUFFIX, first.text)
    if tail:
        pieces[-1] = Piece(PieceKind.PREFIX, last.text)
    return pieces


def compile_term(language: str, concept: str, source: str) -> Term:
    """Compile one lexicon entry.

    Raises:
        TermError: the term is empty, malformed, or its regular expression does not compile.
    """
    text = source.strip()
    if text.startswith("re:"):
        expression = text[3:].strip()
        if not expression:
            raise TermError("empty regular expression")
        try:
            pattern = regex.compile(expression, regex.V1)
        except regex.error as exc:
            raise TermError(f"regular expression does not compile: {exc}") from None
        return Term(language, concept, source, pattern=pattern)
    pieces: list[Piece] = []
    for chunk in text.split():
        pieces.extend(_pieces_of(chunk))
    if not pieces:
        raise TermError("empty term")
    if pieces[0].kind in (PieceKind.ANY, PieceKind.GAP) or pieces[-1].kind in (PieceKind.ANY, PieceKind.GAP):
        raise TermError("a term cannot start or end with _ or ..")
    return Term(language, concept, source, pieces=tuple(pieces))


#: Concept hits of one text: ``language -> concept -> [(first_token, last_token), ...]``.
ConceptHits = dict[str, dict[str, list[tuple[int, int]]]]


class TermIndex:
    """Finds the concepts of every loaded language in a token sequence.

    The first piece of every phrase is indexed by exact word, prefix, suffix or
    infix; the answer for each distinct word is memoised, because the same
    words come back in every message.
    """

    _MEMO_LIMIT = 200_000

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms: tuple[Term, ...] = tuple(t for t in terms if t.pattern is None)
        self.regex_terms: tuple[Term, ...] = tuple(t for t in terms if t.pattern is not None)
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._prefix: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._suffix: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._infix: list[tuple[str, int]] = []
        # Phrases opening with two exact words ("the listing", "thank you for") are
        # indexed by that pair: common first words would otherwise try many phrases.
        self._pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
        for term_id, term in enumerate(self.terms):
            first = term.pieces[0]
            if len(term.pieces) > 1 and first.kind is PieceKind.EXACT and term.pieces[1].kind is PieceKind.EXACT:
                self._pairs[(first.text, term.pieces[1].text)].append(term_id)
            elif first.kind is PieceKind.EXACT:
                self._exact[first.text].append(term_id)
            elif first.kind is PieceKind.PREFIX:
                self._prefix[len(first.text)][first.text].append(term_id)
            elif first.kind is PieceKind.SUFFIX:
                self._suffix[len(first.text)][first.text].append(term_id)
            else:
                self._infix.append((first.text, term_id))
        self._pair_firsts = frozenset(first for first, _ in self._pairs)
        self._prefix_lengths = sorted(self._prefix)
        self._suffix_lengths = sorted(self._suffix)
        self._memo: dict[str, tuple[int, ...]] = {}

    def _lookup(self, word: str) -> list[int]:
        found = list(self._exact.get(word, ()))
        size = len(word)
        for length in self._prefix_lengths:
            if length > size:
                break
            found.extend(self._prefix[length].get(word[:length], ()))
        for length in self._suffix_lengths:
            if length > size:
                break
            found.extend(self._suffix[length].get(word[-length:], ()))
        for text, term_id in self._infix:
            if text in word:
                found.append(term_id)
        return found

    def first_matches(self, word: str) -> tuple[int, ...]:
        """Ids of the terms whose first piece fits ``word`` (or a leetspeak reading of it)."""
        cached = self._memo.get(word)
        if cached is not None:
            return cached
        found = self._lookup(word)
        for variant in leet_variants(word):
            found.extend(self._lookup(variant))
        result = tuple(sorted(set(found)))
        if len(self._memo) >= self._MEMO_LIMIT:
            self._memo.clear()
        self._memo[word] = result
        return result

    def _pair_terms(self, first: str, second: str, pair_firsts: frozenset[str]) -> list[int]:
        """Phrase terms opening with this word pair, leetspeak readings included ("c0de promo")."""
        found: list[int] = []
        firsts = (first, *leet_variants(first))
        seconds = (second, *leet_variants(second))
        for a in firsts:
            if a in pair_firsts:
                for b in seconds:
                    found.extend(self._pairs.get((a, b), ()))
        return found

    def find(self, tokens: Tokens) -> tuple[ConceptHits, list[str]]:
        """Every concept hit in ``tokens``, by language; plus regex timeouts as defects."""
        hits: ConceptHits = {}
        words = tokens.words
        sentences = tokens.sentences
        pair_firsts = self._pair_firsts
        memo = self._memo
        last_index = len(words) - 1
        for index, word in enumerate(words):
            if (
                index < last_index
                and sentences[index + 1] == sentences[index]
                and (word in pair_firsts or leet_variants(word))
            ):
                for term_id in self._pair_terms(word, words[index + 1], pair_firsts):
                    term = self.terms[term_id]
                    end = _match_rest(term.pieces, 2, tokens, index + 2, sentences[index])
                    if end is not None:
                        hits.setdefault(term.language, {}).setdefault(term.concept, []).append((index, end))
            found = memo.get(word)
            if found is None:
                found = self.first_matches(word)
            if tokens.joined and index in tokens.joined:
                found = tuple(sorted({*found, *(t for v in trimmed_variants(word) for t in self.first_matches(v))}))
            for term_id in found:
                term = self.terms[term_id]
                if len(term.pieces) == 1:
                    last: int | None = index
                else:
                    last = _match_rest(term.pieces, 1, tokens, index + 1, tokens.sentences[index])
                if last is not None:
                    hits.setdefault(term.language, {}).setdefault(term.concept, []).append((index, last))
        defects = self._find_regex(tokens, hits)
        return hits, defects

    def _find_regex(self, tokens: Tokens, hits: ConceptHits) -> list[str]:
        defects: list[str] = []
        if not self.regex_terms or not tokens.words:
            return defects
        text = tokens.norm.text
        for term in self.regex_terms:
            assert term.pattern is not None
            try:
                matches = list(term.pattern.finditer(text, timeout=REGEX_TIMEOUT))
            except TimeoutError:
                defects.append(f"regex-timeout:{term.language}:{term.concept}")
                continue
            for match in matches:
                span = _token_span(tokens, match.start(), match.end())
                if span is not None:
                    hits.setdefault(term.language, {}).setdefault(term.concept, []).append(span)
        return defects


def _match_rest(pieces: Sequence[Piece], at: int, tokens: Tokens, index: int, sentence: int) -> int | None:
    """Match ``pieces[at:]`` from token ``index``; the index of the last token, or ``None``."""
    if at == len(pieces):
        return index - 1
    piece = pieces[at]
    if piece.kind is PieceKind.GAP:
        for skip in range(_MAX_GAP + 1):
            found = _match_rest(pieces, at + 1, tokens, index + skip, sentence)
            if found is not None:
                return found
        return None
    if index >= len(tokens.words) or tokens.sentences[index] != sentence:
        return None
    if not piece.matches(tokens.words[index]) and not any(piece.matches(v) for v in leet_variants(tokens.words[index])):
        return None
    return _match_rest(pieces, at + 1, tokens, index + 1, sentence)


def _token_span(tokens: Tokens, start: int, end: int) -> tuple[int, int] | None:
    """Tokens overlapping the normalised span ``[start, end)``.

    A match made only of symbols ("★★★★★", "?") overlaps no token: it is placed
    on the token just before it (or after it, at the start of the text).
    """
    if not tokens.words:
        return None
    first = bisect.bisect_right(tokens.ends, start)
    last = bisect.bisect_left(tokens.starts, end) - 1
    if first <= last and first < len(tokens.words):
        return first, last
    near = max(0, min(first - 1, len(tokens.words) - 1))
    return near, near
