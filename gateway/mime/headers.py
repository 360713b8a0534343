"""Header decoding and the reply-or-proactive decision.

Subject prefixes are the ones mail clients really write in the supported
languages (Outlook, Thunderbird, Apple Mail, Gmail and the Polish, Russian and
Turkish webmails localise them). Sources: the "List of email subject
abbreviations" collected on Wikipedia (checked against Outlook's localised
builds): en RE/FW/FWD; de AW (Antwort), WG (Weitergeleitet); fr RE/TR
(transféré); it R/RIF (riferimento), I (inoltrato); es RE/RV (reenviado);
pl Odp/ODP (odpowiedź), PD (przekaż dalej); nl Antw/Doorst (doorgestuurd);
sv SV (svar), VB (vidarebefordrat); pt RES (resposta), ENC (encaminhado);
tr YNT (yanıt), İLT (ilet); ru Ответ/Отв, Пересл; uk Відповідь/Відп, Пересл;
be Адказ. Fi/da/no also use SV/VS, seen in Nordic helpdesks.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from gateway.mime.charsets import fix_surrogates

REPLY_PREFIXES = frozenset(
    p.casefold()
    for p in (
        "Re", "Aw", "Sv", "Vs", "Odp", "Antw", "Antwort", "R", "Rif", "Ynt", "Yanıt", "Res", "Resp", "Rép",
        "Ответ", "Отв", "Відповідь", "Відп", "Адказ", "Адк", "Odpověď",
    )
)  # fmt: skip
FORWARD_PREFIXES = frozenset(
    p.casefold()
    for p in (
        "Fwd", "Fw", "Wg", "Tr", "Pd", "Rv", "I", "Vb", "Doorst", "Enc", "İlt", "Ilt", "Vl",
        "Пересл", "Переслать", "Переслано", "Переслане", "Пераслана",
    )
)  # fmt: skip

# A prefix is a short word, an optional counter ("Re[2]:", "RE (3):"), then a colon
# (ASCII or full width) with optional spaces around it.
_PREFIX = re.compile(r"\s*([^\W\d_]{1,12}\.?)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*")
# "Re " without a colon is deliberately not a prefix: too many subjects start with such words.

MAX_HEADER_CHARS = 16_384  # a decoded header value longer than this is truncated (defect)


def header_text(msg: Message, name: str, defects: list[str]) -> str:
    """The decoded value of header ``name`` ("" when absent), never raising.

    Decodes the raw value (unfolding, RFC 2047 words) instead of asking
    ``policy.default`` for a structured header object: building those objects
    costs more than the rest of a small message, and only the text is needed.
    """
    lowered = name.lower()
    raw = next((value for key, value in msg.raw_items() if key.lower() == lowered), None)
    if raw is None:
        return ""
    text = re.sub(r"\r?\n[ \t]+", " ", str(raw)).strip()
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except Exception:  # undecodable encoded words stay as written
            defects.append(f"header-undecodable:{lowered}")
    text, repaired = fix_surrogates(text)
    if repaired:
        defects.append(f"header-8bit:{lowered}")
    if len(text) > MAX_HEADER_CHARS:
        defects.append(f"header-too-long:{lowered}")
        text = text[:MAX_HEADER_CHARS]
    return text


def addresses(value: str) -> tuple[str, ...]:
    """Lowercase addr-specs in an address header value (groups flattened, junk skipped)."""
    found: list[str] = []
    for _name, addr in getaddresses([value]):
        addr = addr.strip().lower()
        if "@" in addr and addr not in found:
            found.append(addr)
    return tuple(found)


def first_address(value: str) -> str:
    """The first addr-spec of ``value`` in lowercase, ``""`` when there is none."""
    found = addresses(value)
    return found[0] if found else ""


def message_ids(value: str) -> tuple[str, ...]:
    """Message ids (``<...>``) in a References/In-Reply-To value, in order."""
    return tuple(re.findall(r"<[^<>\s]{1,998}>", value))


def subject_prefixes(subject: str) -> list[str]:
    """The leading reply/forward prefixes of ``subject`` as written (``["AW", "Re"]``)."""
    found: list[str] = []
    pos = 0
    while len(found) < 20:
        match = _PREFIX.match(subject, pos)
        if not match:
            break
        word = match.group(1)
        key = word.casefold()
        if key not in REPLY_PREFIXES and key not in FORWARD_PREFIXES and key.rstrip(".") not in REPLY_PREFIXES:
            break
        found.append(word)
        pos = match.end()
    return found


def reply_evidence(subject: str, in_reply_to: str, references: str) -> str:
    """Why this message answers a thread, or ``""`` for a proactive message.

    Threading headers win; otherwise the first subject prefix decides, so
    ``Fwd: Re: ...`` (forwarding a reply to someone new) is not a reply.
    """
    if message_ids(in_reply_to):
        return "in-reply-to"
    if message_ids(references):
        return "references"
    prefixes = subject_prefixes(subject)
    if prefixes:
        key = prefixes[0].casefold().rstrip(".")
        if key in REPLY_PREFIXES and prefixes[0].casefold() not in FORWARD_PREFIXES:
            return f"subject:{prefixes[0]}"
    return ""
