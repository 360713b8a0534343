"""URLs in text and markup, including the forms sellers use to slip a domain past a filter.

Plain URLs (``https://...``, ``www....``), bare domains (``shop.de``) and
obfuscated ones ("shop[.]com", "shop (dot) de", "www dot shop dot com",
"shop . de", ``hxxps://``). A host only counts when its top-level domain is a
real one (ICANN section of the Public Suffix List, pinned as the
``publicsuffixlist`` package), so "Thank you.Regards" is no link. Forms that
are ordinary prose as often as they are domains (spaced dots, the word "dot")
are accepted only with the TLDs of the markets we serve and written in
lowercase.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

_PSL = PublicSuffixList(only_icann=True, accept_unknown=False)

# TLDs accepted in the prose-like obfuscations ("shop . de", "shop dot com"):
# generic ones shops use and the ccTLDs of the supported markets, minus those that
# are common words in the supported languages ("it", "in", "at", "be", "no", "to"...).
COMMON_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "info",
        "biz",
        "shop",
        "store",
        "online",
        "site",
        "eu",
        "de",
        "fr",
        "es",
        "pl",
        "nl",
        "se",
        "pt",
        "tr",
        "ru",
        "ua",
        "by",
        "uk",
        "ch",
        "cz",
        "sk",
        "hu",
        "ro",
        "dk",
        "fi",
        "gr",
        "ie",
        "lt",
        "lv",
        "ee",
        "si",
        "hr",
        "bg",
        "br",
        "mx",
        "ca",
        "au",
        "jp",
        "cn",
        "io",
        "xyz",
        "top",
        "club",
        "vip",
    ]
)
# TLDs that are also common file extensions: "photo.zip", "readme.md", "setup.sh"
# are file names far more often than hosts when written bare.
FILE_LIKE_TLDS = frozenset(["zip", "mov", "md", "py", "sh", "rs", "ps", "ai", "cs", "so", "pm", "mp", "cf", "cc", "hr"])

_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_PATH = r"(?:[/?#][^\s<>\"'`]*)?"
_URL = re.compile(r"(?<![\w.+-])((?:https?|hxxps?|ftp|h\*\*ps?)://|www\d{0,3}\.)[^\s<>\"'`]+", re.I)
_BARE = re.compile(rf"(?<![\w@.+/-])((?:{_LABEL}\.)+{_LABEL})(?::\d{{1,5}})?{_PATH}")
# Obfuscated dots: bracketed ". / dot / punkt / point / punto / ponto / punt / nokta / точка / кропка",
# the English word "dot" between spaces, and a dot surrounded by spaces.
_BRACKETED_DOT = r"\s*[\[\(\{<]\s*(?:\.|dot|punkt|point|punto|ponto|punt|nokta|точка|кропка)\s*[\]\)\}>]\s*"
# Only English "dot" makes a prose link: the other languages' words for it are
# everyday words ("un punto de recogida", "point de retrait"). They count in an
# e-mail address, where a word for "at" must come too (contacts.py).
_WORD_DOT = r"\s+dot\s+"
# A space *before* the dot: "shop . de", "shop .de" ("you. Regards" is punctuation).
_SPACED_DOT = r"\s+\.\s*"
_OBF_SEP = rf"(?:{_BRACKETED_DOT}|{_WORD_DOT}|{_SPACED_DOT}|\.)"
_OBFUSCATED = re.compile(rf"(?<![\w@.])((?:{_LABEL}{_OBF_SEP}){{1,5}}{_LABEL})(?![\w@])", re.I)
_TRAILING = ".,;:!?'\")]}>*"


@dataclass(frozen=True, slots=True)
class FoundLink:
    """A link found in text with its character offsets."""

    url: str
    scheme: str
    host: str
    start: int
    end: int
    obfuscated: bool = False


@functools.lru_cache(maxsize=4096)
def is_tld(label: str) -> bool:
    """Whether ``label`` (lowercase, Unicode or ``xn--``) is a top-level domain in the PSL."""
    return bool(label) and _PSL.publicsuffix("x." + label) is not None


def decode_host(host: str) -> str:
    """Lowercase, trailing-dot-free host with ``xn--`` labels decoded to Unicode."""
    host = host.strip().strip(".").lower()
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError, ValueError):
                label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)


def parse_url(url: str) -> tuple[str, str, str]:
    r"""``(url, scheme, host)`` for a URL as a browser would read it (never raises).

    Browsers drop tabs and newlines inside URLs and treat ``\\`` as ``/`` in web
    URLs, so ``https://evil.example\\@amazon.de`` goes to ``evil.example``; the
    host is taken after any ``user:pass@``.
    """
    cleaned = re.sub(r"[\t\r\n]", "", url).strip()
    scheme_match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme in ("http", "https", "ftp", "") and "\\" in cleaned:
        cleaned = cleaned.replace("\\", "/")
    if scheme in ("mailto", "tel", "sms", "callto", "javascript", "data", "cid", "viber", "whatsapp", "tg"):
        return cleaned, scheme, ""
    try:
        parts = urlsplit(cleaned if scheme or cleaned.startswith("//") else "//" + cleaned)
        host = parts.hostname or ""
    except ValueError:
        host = ""
    return cleaned, scheme, decode_host(host)


def _trim(text: str, start: int, end: int) -> int:
    """Drop trailing punctuation that belongs to the sentence, keeping balanced brackets."""
    while end > start and text[end - 1] in _TRAILING:
        ch = text[end - 1]
        if ch == ")" and text[start:end].count("(") >= text[start:end].count(")"):
            break
        end -= 1
    return end


def _host_ok(host: str, written_tld: str, strict: bool) -> bool:
    labels = host.split(".")
    if len(labels) < 2 or any(not label or len(label) > 63 for label in labels):
        return False
    if "_" in host:
        return False  # "60_whitelist.cf" is a file; web host names have no underscores
    tld = labels[-1]
    if not is_tld(tld):
        return False
    if not (written_tld.islower() or written_tld.isupper()):
        return False  # "you.Regards", "order.Thanks": a sentence with a missing space
    if strict:
        return tld in COMMON_TLDS and written_tld.islower()
    return True


def find_links(text: str, exclude: Sequence[tuple[int, int]] = ()) -> list[FoundLink]:
    """Every URL, bare domain and obfuscated domain in ``text``, in order of position.

    ``exclude`` holds spans already explained (e-mail addresses, whose domain is
    no link); bare and obfuscated domains inside them are not reported.
    """
    found: list[FoundLink] = []
    taken = bytearray(len(text))  # 1 where a link or an excluded span already is

    def take(start: int, end: int) -> None:
        taken[start:end] = b"\x01" * (end - start)

    def free(start: int, end: int) -> bool:
        return taken.find(1, start, end) == -1

    for start, end in exclude:
        take(max(start, 0), min(end, len(text)))

    for match in _URL.finditer(text):
        start, end = match.start(), _trim(text, match.start(), match.end())
        raw = text[start:end]
        url = re.sub(r"^(?:hxxp|h\*\*p)", "http", raw, flags=re.I)
        url = re.sub(_BRACKETED_DOT, ".", url, flags=re.I)
        obfuscated = url != raw
        if url.lower().startswith("www"):
            _, _, host = parse_url("//" + url)
            scheme = ""
        else:
            url, scheme, host = parse_url(url)
        if scheme == "" and host and not is_tld(host.rsplit(".", 1)[-1]):
            continue  # "www.something" needs a real TLD; an explicit scheme is a link whatever the host
        found.append(FoundLink(url, scheme, host, start, end, obfuscated))
        take(start, end)

    for match in _BARE.finditer(text):
        start, end = match.start(), _trim(text, match.start(), match.end())
        if not free(start, end) or (end < len(text) and text[end] == "@"):
            continue
        host_written = match.group(1)
        host = decode_host(host_written)
        tld = host_written.rsplit(".", 1)[1]
        if not _host_ok(host, tld, strict=False):
            continue
        if end - start == len(host_written) and host.rsplit(".", 1)[1] in FILE_LIKE_TLDS:
            continue
        found.append(FoundLink(text[start:end], "", host, start, end))
        take(start, end)

    for match in _OBFUSCATED.finditer(text):
        start, end = match.span(1)
        written = match.group(1)
        if not free(start, end) or re.fullmatch(r"[\w.-]+", written):
            continue  # plain hosts were handled above
        labels = re.split(_OBF_SEP, written, flags=re.I)
        if len(labels) < 2 or not all(re.fullmatch(_LABEL, label) for label in labels):
            continue
        prose_like = bool(re.search(rf"{_WORD_DOT}|{_SPACED_DOT}", written, re.I)) and not re.search(
            _BRACKETED_DOT, written, re.I
        )
        host = decode_host(".".join(labels))
        if not _host_ok(host, labels[-1], strict=prose_like):
            continue
        if prose_like and not (labels[0].lower().startswith("www") or all(x.islower() for x in labels)):
            continue
        found.append(FoundLink(host, "", host, start, end, obfuscated=True))
        take(start, end)
    found.sort(key=lambda link: link.start)
    return found
