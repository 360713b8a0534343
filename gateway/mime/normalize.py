"""Normalisation for matching, with a map back to the original offsets.

Rules match on a folded form of the text so that obfuscation does not defeat
them, but evidence must quote what the agent really wrote. :func:`normalize`
returns both: the folded text and a piecewise offset map back to the original.

Folding, in order:

1. per character: NFKC (fullwidth and mathematical letters, ligatures), lower
   case, diacritics stripped (agents often type without them; ``й``, ``ї``,
   ``ў`` stay whole because their marks make other letters), letters with no
   decomposition folded (``ł``, ``ø``, ``đ``, ``ı``, ``ß``->``ss``...),
   invisible characters (zero-width, soft hyphen, bidi controls, tags,
   variation selectors, stray combining marks) removed, all spaces made plain;
2. per word: letters of a minority script that look like the majority script's
   letters are folded into it, both directions (Cyrillic ``е`` in ``rеview`` and
   Latin ``o`` in ``oтзыв``), from Unicode's confusables data;
3. letter-spaced words (``r e v i e w``, ``r.e.v.i.e.w``) joined.

Leetspeak (``r3v13w``) is not folded here: digits are meaningful in order ids
and prices, so the policy's token matcher folds them only inside words.

Speed matters (every text of every message passes here), so step 1 folds the
common Unicode blocks with one ``str.translate`` from a table built at import
and walks only the few characters that change length; text with characters
beyond those blocks takes the per-character reference path. The two agree (a
property test checks it).
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import confusable_homoglyphs

# Letters without a canonical decomposition that agents replace by base letters.
_EXTRA_FOLDS = {
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ı": "i",  # Turkish dotless i: agents without a Turkish keyboard type i
    "ς": "σ",  # Greek final sigma (str.lower picks it by context, per character it cannot)
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    # Apostrophes in all their typographic forms (Ukrainian writes them inside words).
    "’": "'",
    "‘": "'",
    "ʼ": "'",
    "´": "'",
}
# Cyrillic letters whose diacritic makes a different letter: kept whole.
# (ё is folded to е: Russian writes е for ё almost everywhere.)
_KEEP = frozenset("йїўЙЇЎ")
_INVISIBLE_EXTRA = "\u034f\u115f\u1160\u3164\uffa0"  # fillers and the grapheme joiner


def _fold_char(char: str) -> str:
    """The folded form of one character (may be empty or longer than one)."""
    category = unicodedata.category(char)
    # Format characters (zero-width space/joiners, bidi marks, soft hyphen, tags)
    # and nonspacing marks carry nothing a reader sees as a letter.
    if category in ("Cf", "Mn", "Me") or char in _INVISIBLE_EXTRA:
        return ""
    if category == "Zs":
        return " "
    if char in _KEEP:
        return char.lower()
    if char in _EXTRA_FOLDS:
        return _EXTRA_FOLDS[char]
    out = []
    for piece in unicodedata.normalize("NFKC", char).lower():
        if piece in _KEEP:
            out.append(piece)
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", piece) if not unicodedata.combining(c))
        out.append("".join(_EXTRA_FOLDS.get(c, c) for c in base))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Normalized:
    """Folded text plus a map from its offsets back to the original's.

    ``breaks`` is a sorted list of ``(folded_offset, original_offset)`` points;
    between two points the map is linear (one folded character per original
    character). An empty list means the identity map. ``joined`` lists the
    folded spans made by joining letter-spaced words (a one-letter word next to
    one, "r e v i e w a", is joined into it: matching may trim it off again).
    """

    text: str
    original: str
    breaks: tuple[tuple[int, int], ...] = ()
    joined: tuple[tuple[int, int], ...] = ()

    def to_original(self, offset: int) -> int:
        """Map a folded offset to the corresponding original offset (clamped inside)."""
        if not self.breaks:
            return max(0, min(offset, len(self.original)))
        index = bisect.bisect_right(self.breaks, (offset, len(self.original) + 1)) - 1
        if index < 0:
            return max(0, min(offset, len(self.original)))
        folded_at, original_at = self.breaks[index]
        return max(0, min(original_at + (offset - folded_at), len(self.original)))

    def from_original(self, offset: int) -> int:
        """Map an original offset to the first folded offset at or after it."""
        if not self.breaks:
            return max(0, min(offset, len(self.text)))
        # Original offsets grow with folded ones, so bisect over the break points.
        originals = [b[1] for b in self.breaks]
        index = bisect.bisect_right(originals, offset) - 1
        if index < 0:
            return 0
        folded_at, original_at = self.breaks[index]
        next_folded = self.breaks[index + 1][0] if index + 1 < len(self.breaks) else len(self.text)
        return max(0, min(folded_at + (offset - original_at), next_folded, len(self.text)))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded ``[start, end)`` span to the original text's span."""
        first = self.to_original(start)
        if end <= start:
            return first, first
        # The end maps through the last character so that "ss" folded from "ß"
        # does not stretch past the original letter.
        last = self.to_original(end - 1) + 1
        return first, max(first, min(last, len(self.original)))

    def original_text(self, start: int, end: int) -> str:
        """The original text behind a folded span."""
        a, b = self.span(start, end)
        return self.original[a:b]


class _Builder:
    """Accumulates folded pieces and the offset breakpoints between them."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.breaks: list[tuple[int, int]] = []
        self.length = 0

    def add(self, folded: str, original_at: int, linear: bool) -> None:
        """Append ``folded``, which came from the original at ``original_at``.

        ``linear`` pieces map one-to-one onto the original from ``original_at``;
        other pieces (an expansion, a joined letter) map wholly onto that one
        original character.
        """
        if not folded:
            return
        if not linear or not self.breaks or self._expected(original_at) != self.length:
            self.breaks.append((self.length, original_at))
        if not linear and len(folded) > 1:
            for i in range(1, len(folded)):
                self.breaks.append((self.length + i, original_at))
            self.breaks.append((self.length + len(folded), original_at + 1))
        self.pieces.append(folded)
        self.length += len(folded)

    def _expected(self, original_at: int) -> int:
        folded_at, orig = self.breaks[-1]
        return folded_at + (original_at - orig)

    def result(self, original: str, joined: tuple[tuple[int, int], ...] = ()) -> Normalized:
        return Normalized("".join(self.pieces), original, tuple(self.breaks), joined)


# --- step 1: characters ----------------------------------------------------


@cache
def _fold_cached(char: str) -> str:
    return _fold_char(char)


def _fold_slow(text: str) -> Normalized:
    """Per-character folding with an exact offset map (used when lengths change)."""
    builder = _Builder()
    for index, char in enumerate(text):
        folded = _fold_cached(char)
        builder.add(folded, index, linear=len(folded) == 1)
    return builder.result(text)


# Blocks folded ahead of time: Latin, IPA, combining marks, Greek, Cyrillic,
# punctuation, super/subscripts, currency, letterlike symbols, number forms,
# enclosed alphanumerics, ligatures, variation selectors, fullwidth forms, emoji.
# Text made only of these is folded by one ``str.translate`` (a C loop).
_EAGER_RANGES = (
    (0x0000, 0x0530),
    (0x1E00, 0x20D0),
    (0x2100, 0x2190),
    (0x2460, 0x2500),
    (0xFB00, 0xFB50),
    (0xFE00, 0xFE10),
    (0xFF00, 0xFFF0),
    (0x1F000, 0x1FB00),
)
_OUTSIDE = re.compile(
    "[^\u0000-\u052f\u1e00-\u20cf\u2100-\u218f\u2460-\u24ff\ufb00-\ufb4f"
    "\ufe00-\ufe0f\uff00-\uffef\U0001f000-\U0001faff]"
)
# Characters of the eager blocks that fold to nothing (format characters,
# combining marks, variation selectors), as a few ranges so the scan is fast.
_DELETABLE = re.compile("[\u00ad\u0300-\u036f\u0483-\u0489\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]")
# The expansions that ordinary text contains; anything else takes the full scan.
_COMMON_EXPANSIONS = re.compile("[ßæœ…]")


def _build_tables() -> tuple[dict[int, str], re.Pattern[str]]:
    """The translate table (identity entries included) and the resizing characters."""
    table: dict[int, str] = {}
    resizing: set[str] = set()
    for low, high in _EAGER_RANGES:
        for codepoint in range(low, high):
            char = chr(codepoint)
            # Identity entries too: a miss costs translate an exception per character.
            folded = _fold_cached(char)
            table[codepoint] = folded
            if len(folded) != 1:
                resizing.add(char)
    resizing_re = re.compile("[" + "".join(re.escape(c) for c in sorted(resizing)) + "]")
    return table, resizing_re


_TABLE, _RESIZING_RE = _build_tables()


def _fold_chars(text: str) -> Normalized:
    if text.isascii():
        # ASCII folds to its lower case, one character for one.
        return Normalized(text.lower(), text)
    # Turkish İ is the one capital whose lower case is two code points.
    lowered = text.replace("İ", "I").lower()
    if len(lowered) != len(text) or _OUTSIDE.search(lowered):
        # Characters beyond the eager blocks (CJK, rare symbols): the reference path.
        return _fold_slow(text)
    folded = lowered.translate(_TABLE)
    deletions = _DELETABLE.search(lowered) is not None
    if len(folded) == len(text) and not deletions:
        return Normalized(folded, text)
    # Something resized: walk only the resizing characters, with the cheap
    # pattern when the usual expansions explain the whole difference.
    resizing = _RESIZING_RE
    if not deletions:
        common = _COMMON_EXPANSIONS.findall(lowered)
        if len(text) + sum(len(_TABLE[ord(c)]) - 1 for c in common) == len(folded):
            resizing = _COMMON_EXPANSIONS
    builder = _Builder()
    position = 0
    for match in resizing.finditer(lowered):
        if match.start() > position:
            builder.add(lowered[position : match.start()].translate(_TABLE), position, linear=True)
        builder.add(_TABLE[ord(match.group())], match.start(), linear=False)
        position = match.end()
    if position < len(lowered):
        builder.add(lowered[position:].translate(_TABLE), position, linear=True)
    return builder.result(text)


# --- step 2: confusables ---------------------------------------------------

_CONFUSABLES_JSON = Path(confusable_homoglyphs.__file__ or "").with_name("confusables.json")
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
# Lower-case letters that only look alike in upper case (К/K, М/M, Н/H, Т/T, В/B):
# an attacker writing capitals is caught too, after lower-casing.
_UPPER_LOOKALIKES = {"к": "k", "м": "m", "н": "h", "т": "t", "в": "b", "ь": "b"}


def _script(char: str) -> str:
    head = unicodedata.name(char, "").split(" ", 1)[0]
    return head if head in _SCRIPTS else ""


def _is_basic(char: str) -> bool:
    return "a" <= char <= "z" or "а" <= char <= "я" or char in "іїєґў" or "α" <= char <= "ω"


@cache
def _confusable_maps() -> dict[tuple[str, str], dict[str, str]]:
    """``(from_script, to_script) -> {letter: lookalike}`` for lower-case letters."""
    data = json.loads(_CONFUSABLES_JSON.read_text(encoding="utf-8"))
    maps: dict[tuple[str, str], dict[str, str]] = {}
    for char, entries in data.items():
        if len(char) != 1 or not char.isalpha() or char != char.lower():
            continue
        source = _script(char)
        if not source:
            continue
        for entry in entries:
            target_char = entry["c"]
            if len(target_char) != 1 or not target_char.isalpha() or target_char != target_char.lower():
                continue
            target = _script(target_char)
            # Only fold onto the plain letters of the target alphabet (a-z, а-я, α-ω),
            # never onto rare phonetic letters (ᴎ, ĸ, ʍ) no word is written with.
            if target and target != source and _is_basic(target_char):
                maps.setdefault((source, target), {}).setdefault(char, target_char)
    cyr_to_lat = maps.setdefault(("CYRILLIC", "LATIN"), {})
    lat_to_cyr = maps.setdefault(("LATIN", "CYRILLIC"), {})
    for cyr, lat in _UPPER_LOOKALIKES.items():
        cyr_to_lat.setdefault(cyr, lat)
        lat_to_cyr.setdefault(lat, cyr)
    return maps


_NON_LATIN = re.compile("[\u0370-\u04ff]")
_LATIN_RUN = re.compile("[a-z]+")
_NON_LATIN_RUN = re.compile("[\u0370-\u04ff]+")
_GREEK = re.compile("[\u0370-\u03ff]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


def _word_at(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end


def _mixed_words(text: str) -> list[tuple[int, int]]:
    """Spans of words that mix Latin, Greek and Cyrillic letters."""
    if text.isascii() or not _NON_LATIN.search(text):
        return []
    # Walk the rarer script's runs and look at their neighbours. Greek and
    # Cyrillic letters take two bytes in UTF-8, so the byte count tells which is rarer.
    non_ascii_share = (len(text.encode("utf-8")) - len(text)) / len(text)
    rarer = _LATIN_RUN if non_ascii_share > 0.3 else _NON_LATIN_RUN
    spans: set[tuple[int, int]] = set()
    for run in rarer.finditer(text):
        a, b = run.span()
        if (a and text[a - 1].isalpha()) or (b < len(text) and text[b].isalpha()):
            spans.add(_word_at(text, a, b))
    if _GREEK.search(text) and _CYRILLIC.search(text):
        for run in _NON_LATIN_RUN.finditer(text):
            word = run.group()
            if _GREEK.search(word) and _CYRILLIC.search(word):
                spans.add(_word_at(text, *run.span()))
    return sorted(spans)


def _fold_confusables(text: str) -> str:
    """Fold minority-script letters of mixed-script words into the majority script (1:1)."""
    spans = _mixed_words(text)
    if not spans:
        return text
    maps = _confusable_maps()
    out = list(text)
    for start, end in spans:
        word = text[start:end]
        counts = dict.fromkeys(_SCRIPTS, 0)
        for char in word:
            script = _script(char)
            if script:
                counts[script] += 1
        if sum(1 for s in _SCRIPTS if counts[s]) < 2:
            continue
        majority = max(_SCRIPTS, key=lambda s: (counts[s], s == "LATIN"))
        for offset, char in enumerate(word):
            script = _script(char)
            if script and script != majority:
                replacement = maps.get((script, majority), {}).get(char)
                if replacement is not None:
                    out[start + offset] = replacement
    return "".join(out)


# --- step 3: letter spacing ------------------------------------------------

_SEP = "[ .\\-_*·|/]"
# Four or more single letters separated by the same one or two separators each:
# "r e v i e w", "r.e.v.i.e.w". Three would join ordinary text ("a i o"), and a
# change of separator is prose ("u a.u.b." is "you, please" in Dutch).
_SPACED = re.compile(rf"(?<![^\W_])[^\W\d_]({_SEP}{{1,2}})[^\W\d_](?:\1[^\W\d_]){{2,}}(?![^\W_])")
# A cheap necessary condition (starts with a separator, so it scans fast).
_SPACED_HINT = re.compile(rf"{_SEP}\w{_SEP}{{1,2}}\w{_SEP}{{1,2}}\w{_SEP}")


def _join_spaced(norm: Normalized) -> Normalized:
    text = norm.text
    if not _SPACED_HINT.search(f" {text} ") or not _SPACED.search(text):
        return norm
    builder = _Builder()
    position = 0
    joined: list[tuple[int, int]] = []
    for match in _SPACED.finditer(text):
        _copy(builder, norm, position, match.start())
        start = builder.length
        for offset, char in enumerate(match.group()):
            if char.isalpha():
                builder.add(char, norm.to_original(match.start() + offset), linear=False)
        joined.append((start, builder.length))
        position = match.end()
    _copy(builder, norm, position, len(text))
    return builder.result(norm.original, tuple(joined))


def _copy(builder: _Builder, norm: Normalized, start: int, end: int) -> None:
    """Copy ``norm.text[start:end]`` keeping its own offset map."""
    if end <= start:
        return
    if not norm.breaks:
        builder.add(norm.text[start:end], start, linear=True)
        return
    # Rare path (letter spacing in text that also had expansions or deletions):
    # per character, so expansions keep mapping onto their one original letter.
    for index in range(start, end):
        builder.add(norm.text[index], norm.to_original(index), linear=True)


def normalize(text: str) -> Normalized:
    """Fold ``text`` for matching; see the module docstring for what is folded."""
    norm = _fold_chars(text)
    folded = _fold_confusables(norm.text)
    if folded != norm.text:
        norm = Normalized(folded, norm.original, norm.breaks)
    return _join_spaced(norm)
