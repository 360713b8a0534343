"""Turning part bytes into text when the declared charset may be wrong or missing.

Helpdesks and old mail clients label windows-1251 text as iso-8859-1, send raw
UTF-8 with no charset, or name charsets Python does not know. We try the
declared charset first, then UTF-8, then the legacy charsets sellers in the
supported languages really use, and keep the first candidate that decodes
strictly and *looks like text* (no control characters, no words mixing scripts,
no mojibake such as ``Ã¼``). When we had to leave the declared charset, the
part gets a ``charset-mismatch`` defect.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from dataclasses import dataclass

# Order matters on ties: the Western and Central European code pages first, then
# Cyrillic (windows-1251 is far more common than KOI8 in current mail).
LEGACY_CHARSETS = ("windows-1252", "windows-1250", "windows-1251", "iso-8859-2", "koi8-r", "koi8-u", "iso-8859-1")

# Charsets that never fail to decode (every byte maps to a character), so a strict
# decode proves nothing and the result must be judged by how it looks.
_NEVER_FAILS = frozenset({"latin-1", "iso8859-1", "iso8859-2", "koi8-r", "koi8-u", "cp1251", "cp1250", "cp1252"})

# Characters judged: a charset choice does not need the whole of a large part.
_SAMPLE = 16_384

# Below this badness a decoding is accepted without looking further.
_GOOD_ENOUGH = 0.02


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from bytes, with the charset that was used and what went wrong."""

    text: str
    charset: str
    defects: tuple[str, ...] = ()


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or ``None`` when unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    # Common aliases mail clients send that Python does not know by that name.
    label = {"x-user-defined": "windows-1252", "unicode-1-1-utf-7": "utf-7", "ansi_x3.4-1968": "ascii"}.get(
        label, label
    )
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def badness(text: str) -> float:
    """How little ``text`` looks like human text, as a fraction of its length (0 is clean).

    Counts control characters, replacement characters, private-use code points,
    the classic UTF-8-read-as-Latin-1 pairs (``Ã`` or ``Â`` followed by a symbol
    from U+0080-U+00BF), and in words with non-ASCII letters: mixed Latin with
    Cyrillic or Greek, lowercase-to-uppercase flips (KOI8 read as windows-1251
    comes out that way) and words made almost only of accented Latin letters
    (Cyrillic read as a Latin code page: "Ïîæàëóéñòà"). Judged on a sample.
    """
    if not text:
        return 0.0
    text = text[:_SAMPLE]
    bad = len(_CONTROL.findall(text)) + len(_MOJIBAKE.findall(text)) + 2 * len(_SYMBOL_IN_WORD.findall(text))
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        scripts = {_script(c) for c in word} - {""}
        if len(scripts) > 1:
            bad += len(word)
            continue
        bad += sum(1 for a, b in itertools.pairwise(word) if a.islower() and b.isupper())
        if scripts == {"latin"} and len(word) >= 4:
            accented = len(word) - len(word.encode("ascii", "ignore"))
            if accented * 4 >= len(word) * 3:
                bad += len(word)
    return bad / len(text)


_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_MOJIBAKE = re.compile("[ÃÂÐÑ][\x80-\xbf]")
_WORD = re.compile(r"[^\W\d_]+")
# A Latin-1 symbol (U+00A0-U+00BF) between two letters: "Wiadomo¶æ" is ISO-8859-2 read
# as windows-1252; real text does not glue "¶" or "¤" into words.
_SYMBOL_IN_WORD = re.compile(r"(?<=[^\W\d_])[\xa0-\xbf\xd7\xf7](?=[^\W\d_])")


def _script(ch: str) -> str:
    if ord(ch) < 0x80:
        return "latin"
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script.lower()
    return ""


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, declared: str | None) -> Decoded:
    """Decode part bytes, recovering from a missing, unknown or wrong charset."""
    codec = codec_name(declared)
    defects: list[str] = []
    if declared and codec is None:
        defects.append(f"unknown-charset:{declared.strip()[:40]}")
    if data.isascii():
        # ASCII is valid in every charset we consider; nothing to guess.
        return Decoded(data.decode("ascii"), codec or "ascii", tuple(defects))
    if codec is not None:
        text = _try(data, codec)
        if text is not None:
            if codec not in _NEVER_FAILS:
                return Decoded(text, codec, tuple(defects))
            # A single-byte label on bytes that are valid UTF-8 is almost always
            # UTF-8 mislabelled: random 8-bit text is very unlikely to be valid UTF-8.
            as_utf8 = _try(data, "utf-8")
            if as_utf8 is not None:
                return Decoded(as_utf8, "utf-8", (*defects, "charset-mismatch"))
            if badness(text) <= _GOOD_ENOUGH:
                return Decoded(text, codec, tuple(defects))
    best: tuple[float, str, str] | None = None
    for candidate in ("utf-8", *LEGACY_CHARSETS):
        if candidate == codec:
            continue
        text = _try(data, candidate)
        if text is None:
            continue
        score = badness(text)
        if candidate == "utf-8" or score <= _GOOD_ENOUGH / 4:
            best = (score, candidate, text)
            break
        if best is None or score < best[0]:
            best = (score, candidate, text)
    if codec is not None:
        own = _try(data, codec)
        if own is not None and (best is None or badness(own) <= best[0]):
            return Decoded(own, codec, tuple(defects))
    if best is not None:
        name = codecs.lookup(best[1]).name
        if codec is not None:
            defects.append("charset-mismatch")
        return Decoded(best[2], name, tuple(defects))
    # Unreachable in practice (latin-1 decodes anything), kept for total safety.
    return Decoded(data.decode(codec or "utf-8", errors="replace"), codec or "utf-8", (*defects, "undecodable-text"))


_SURROGATE = re.compile("[\udc80-\udcff]")


def fix_surrogates(value: str) -> tuple[str, bool]:
    """Repair raw 8-bit header bytes the stdlib kept as surrogate escapes.

    ``policy.default`` turns undeclared 8-bit header bytes into lone surrogates;
    we re-decode them as UTF-8 or a legacy charset. Returns the text and whether
    a repair was needed.
    """
    if not _SURROGATE.search(value):
        return value, False
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8"), True
    return decode_bytes(raw, None).text, True
