"""Finding the trailing quote of the buyer in a reply.

A reply usually ends with the message it answers: ``>`` lines, an HTML quote
container, Outlook's header block ("From:/Sent:/To:/Subject:" or its
localised form) or a "-----Original Message-----" separator, often introduced
by an attribution line ("On ... wrote:", "Am ... schrieb ...:"). That tail is
the buyer's text, not the seller's. Only a *trailing* quote counts: a quote
followed by more of the seller's text stays the seller's (otherwise a quote
would be a hiding place), and the refusal is recorded as a defect.

The split is a single offset: ``text[:start]`` is the seller's, ``text[start:]``
the quote, so spans found in either half map back to the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Attribution verbs ("wrote:") in the 13 supported languages, as mail clients write
# them at the end of the line that introduces a quote.
_WROTE = (
    r"wrote|writes|schrieb|schreibt|a écrit|ha scritto|scrive|escribió|escribio|napisał\(a\)|napisał|napisała"
    r"|pisze|schreef|heeft .{0,80} geschreven|skrev|skriver|escreveu|şunu yazdı|yazdı|пишет|написал\(а\)"
    r"|написал|написала|пише|написав\(ла\)|написав|написала|піша|напісаў|напісала"
)
# The writer's name may follow the verb ("Am ... schrieb Max <m@x.de>:", "Den ... skrev Eva:").
ATTRIBUTION = re.compile(rf"\b(?:{_WROTE})(?!\w)[^\n]{{0,200}}:\s*$", re.I)

_FROM = r"from|von|de|da|od|van|från|kimden|от|від|ад|remitente|nadawca"
_SENT = (
    r"sent|date|gesendet|datum|envoyé|date d'envoi|inviato|data|wysłano|wysłane|verzonden|skickat|gönderildi"
    r"|gönderilme tarihi|tarih|отправлено|дата|надіслано|адпраўлена|enviado|enviada em|fecha"
)
_TO_SUBJ = (
    r"to|an|à|a|do|aan|till|kime|кому|каму|para|subject|betreff|objet|oggetto|temat|onderwerp|ämne|konu|тема"
    r"|asunto|assunto|cc"
)
_LABEL = r"^[ \t*]*(?:{})[ \t*]*:"
FROM_LINE = re.compile(_LABEL.format(_FROM), re.I)
SENT_LINE = re.compile(_LABEL.format(_SENT), re.I)
TO_SUBJ_LINE = re.compile(_LABEL.format(_TO_SUBJ), re.I)

SEPARATOR = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|message original|messaggio originale|mensaje original|wiadomość oryginalna|oryginalna wiadomość"
    r"|oorspronkelijk bericht|origineel bericht|ursprungligt meddelande|originalmeddelande|mensagem original"
    r"|özgün ileti|orijinal mesaj|özgün mesaj|исходное сообщение|оригинальное сообщение|вихідне повідомлення"
    r"|оригінальне повідомлення|першапачатковае паведамленне|зыходнае паведамленне)[ \t]*-{2,}[ \t]*$",
    re.I,
)
# Outlook puts a line of underscores above its header block.
_RULE_LINE = re.compile(r"^[ \t]*_{10,}[ \t]*$")
_QUOTE_LINE = re.compile(r"^[ \t]{0,3}>")


@dataclass(frozen=True, slots=True)
class QuoteSplit:
    """Where the trailing quote starts (``None`` when there is none) and refusals."""

    start: int | None
    defects: tuple[str, ...] = ()


def _lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line.rstrip("\r\n")))
        pos += len(line)
    return out


def _only_space_after(text: str, offset: int) -> bool:
    return not text[offset:].strip()


def _with_attribution(lines: list[tuple[int, str]], index: int) -> int:
    """Move a quote start at line ``index`` up over blank lines and an attribution line."""
    j = index - 1
    while j >= 0 and not lines[j][1].strip():
        j -= 1
    if j < 0:
        return index
    if ATTRIBUTION.search(lines[j][1]) and len(lines[j][1]) <= 400:
        # Gmail wraps long attributions over two lines: "On Mon, ... <a@b>\nwrote:".
        if j > 0 and len(lines[j][1].strip()) < 30 and lines[j - 1][1].strip():
            return j - 1
        return j
    if _RULE_LINE.match(lines[j][1]):
        return j
    return index


def _outlook_block(lines: list[tuple[int, str]], index: int) -> bool:
    if not FROM_LINE.match(lines[index][1]):
        return False
    window = [line for _, line in lines[index + 1 : index + 9]]
    return any(SENT_LINE.match(x) for x in window) and any(TO_SUBJ_LINE.match(x) for x in window)


def find_trailing_quote(text: str, html_regions: tuple[tuple[int, int], ...] = ()) -> QuoteSplit:
    """Find the trailing quote of ``text`` (see the module docstring)."""
    lines = _lines(text)
    candidates: list[tuple[int, int]] = []  # (start offset, end offset of the quoted material)
    refused = False

    for start, end in html_regions:
        index = _line_index(lines, start)
        begin = lines[_with_attribution(lines, index)][0] if index is not None and lines[index][0] == start else start
        candidates.append((begin, end))

    i = 0
    while i < len(lines):
        line = lines[i][1]
        if SEPARATOR.match(line) or _outlook_block(lines, i):
            begin = _with_attribution(lines, i) if not SEPARATOR.match(line) else i
            candidates.append((lines[begin][0], len(text)))
            break  # Everything below belongs to the quoted message.
        if _QUOTE_LINE.match(line):
            j = i
            last = i
            while j < len(lines) and (_QUOTE_LINE.match(lines[j][1]) or not lines[j][1].strip()):
                if lines[j][1].strip():
                    last = j
                j += 1
            end = lines[last][0] + len(lines[last][1])
            candidates.append((lines[_with_attribution(lines, i)][0], end))
            i = j
            continue
        i += 1

    for begin, end in sorted(candidates):
        if _only_space_after(text, end):
            return QuoteSplit(begin, ("quote-not-trailing",) if refused else ())
        refused = True
    return QuoteSplit(None, ("quote-not-trailing",) if refused else ())


def _line_index(lines: list[tuple[int, str]], offset: int) -> int | None:
    lo, hi = 0, len(lines) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if lines[mid][0] <= offset:
            lo = mid + 1
        else:
            hi = mid - 1
    return hi if hi >= 0 else None
