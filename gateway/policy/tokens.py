"""Tokens and sentences of a normalised text, the unit every text rule works on.

Concept co-occurrence is measured in tokens and, by default, within one
sentence: a review noun and a remove verb three sentences apart are not a
request to remove a review. Sentence ends are ``.!?;:`` followed by a space,
a blank line, or a line break after a line shorter than a wrapped one when the
next line starts like a sentence (a capital, a digit, a bullet): helpdesks
hard-wrap plain text at ~72 columns, and a single line break there is not a
sentence end, but one after a greeting line ("Hi Anna,") or a list item is.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

from gateway.mime.normalize import Normalized

# A token starts with a letter or digit and continues with letters, digits, or
# an apostrophe, @ or $ followed by one ("don't", "rev@iew"); so "info@shop.de"
# gives "info@shop" and "de", and "$20" gives "20".
_TOKEN = re.compile(r"[^\W_](?:[^\W_]|['@$](?=[^\W_]))*")
# A sentence end: punctuation then space/end, a smiley or emoji ending a line
# ("bez dopłaty :)" then a new line: chatty sellers end sentences that way, and
# without the break a negation before the smiley would cancel the next sentence's
# request), or a blank line.
_SENTENCE_END = re.compile(
    r"[.!?;:]+(?=\s|$)|(?:[:;]-?[()dp]+|\){2,}|[\U0001F300-\U0001FAFF]+)(?=[ \t]*(?:\n|$))|\n[ \t]*\n"
)
_SHORT_LINE = 60
_BULLETS = frozenset("-*•–—>")

# Leetspeak: digits and symbols that stand for letters inside a word.
_LEET_LATIN = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})
_LEET_LATIN_L = str.maketrans({"1": "l"})
_LEET_CYRILLIC = str.maketrans({"0": "о", "3": "з", "4": "ч", "6": "б", "@": "а", "$": "s"})
_LEETABLE = re.compile(r"[0-9@$]")
_LETTER = re.compile(r"[^\W\d_]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of one normalised text.

    Attributes:
        norm: the normalised text they come from.
        words: token strings (normalised).
        starts, ends: offsets of each token in ``norm.text``.
        sentences: sentence number of each token.
        joined: indices of tokens made by joining letter-spaced words.
    """

    norm: Normalized
    words: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    sentences: tuple[int, ...]
    joined: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self.words)

    def original(self, first: int, last: int) -> str:
        """The original text from token ``first`` to token ``last`` (inclusive)."""
        return self.norm.original_text(self.starts[first], self.ends[last])

    def sentence_bounds(self, index: int) -> tuple[int, int]:
        """First and last token index of the sentence holding token ``index``."""
        sentence = self.sentences[index]
        first = index
        while first > 0 and self.sentences[first - 1] == sentence:
            first -= 1
        last = index
        while last + 1 < len(self.words) and self.sentences[last + 1] == sentence:
            last += 1
        return first, last


def _starts_sentence(norm: Normalized, at: int) -> bool:
    """Whether the line beginning at folded offset ``at`` starts like a sentence."""
    original = norm.original
    index = norm.to_original(at)
    while index < len(original) and original[index] in " \t":
        index += 1
    if index >= len(original):
        return False
    char = original[index]
    return char.isupper() or char.isdigit() or char in _BULLETS


def _continues(norm: Normalized, at: int) -> bool:
    """Whether the text after a period at ``at`` goes on with a lower-case word or a digit.

    "z. B. die", "2000 руб. за отзыв", "Nr. 5": an abbreviation, not a sentence end.
    """
    original = norm.original
    index = norm.to_original(at)
    while index < len(original) and original[index] in " \t":
        index += 1
    return index < len(original) and (original[index].islower() or original[index].isdigit())


def _sentence_breaks(norm: Normalized) -> list[int]:
    """Offsets at which a new sentence starts."""
    text = norm.text
    breaks = [m.end() for m in _SENTENCE_END.finditer(text) if not (m.group() == "." and _continues(norm, m.end()))]
    line_start = 0
    for line_end in _iter_newlines(text):
        if line_end - line_start < _SHORT_LINE and _starts_sentence(norm, line_end + 1):
            breaks.append(line_end + 1)
        line_start = line_end + 1
    breaks.sort()
    return breaks


def _iter_newlines(text: str) -> list[int]:
    out = []
    at = text.find("\n")
    while at != -1:
        out.append(at)
        at = text.find("\n", at + 1)
    return out


def tokenize(norm: Normalized) -> Tokens:
    """Split a normalised text into tokens with sentence numbers."""
    text = norm.text
    matches = list(_TOKEN.finditer(text))
    words = [m.group() for m in matches]
    starts = [m.start() for m in matches]
    ends = [m.end() for m in matches]
    breaks = _sentence_breaks(norm) if words else []
    # A token's sentence number is how many sentence starts lie at or before it.
    sentences = [bisect.bisect_right(breaks, start) for start in starts]
    joined = frozenset(
        i for a, b in norm.joined for i in range(bisect.bisect_left(ends, a + 1), bisect.bisect_left(starts, b))
    )
    return Tokens(norm, tuple(words), tuple(starts), tuple(ends), tuple(sentences), joined)


# One-letter words of the supported languages (articles, conjunctions,
# prepositions): letter spacing joins them into the spaced word next to them.
_ONE_LETTER_WORDS = frozenset("aeiouywzksvавиkосуяізжй")


def trimmed_variants(word: str) -> tuple[str, ...]:
    """A letter-spaced join without the one-letter word glued to either edge.

    "r e m o v e r a sua" is joined as "removera": "remover" is the word.
    """
    out = []
    lead = word[0] in _ONE_LETTER_WORDS
    tail = word[-1] in _ONE_LETTER_WORDS
    if lead and len(word) > 4:
        out.append(word[1:])
    if tail and len(word) > 4:
        out.append(word[:-1])
    if lead and tail and len(word) > 5:
        out.append(word[1:-1])
    return tuple(out)


@lru_cache(maxsize=65536)
def leet_variants(word: str) -> tuple[str, ...]:
    """Readings of a word written with digits for letters (``r3v13w`` -> ``review``).

    Only words with at least two letters and a leetable character are read this
    way, so numbers, order ids and prices stay what they are.
    """
    if not _LEETABLE.search(word) or len(_LETTER.findall(word)) < 2:
        return ()
    if _CYRILLIC.search(word):
        return (word.translate(_LEET_CYRILLIC),)
    first = word.translate(_LEET_LATIN)
    if "1" in word:
        return (first, word.translate(_LEET_LATIN_L).translate(_LEET_LATIN))
    return (first,)
