"""Evidence highlighting: where each finding's quoted text sits in the extracted texts.

A finding carries its evidence (text quoted from the original) and a location
string (``text/plain``, ``text/html (hidden)``, ``attachment a.pdf``...); the
parse gives every text with the same location. Evidence is looked up in the
texts of its location (every text when no location matches), first exactly,
then ignoring case and runs of white space, and every occurrence is marked.
Overlapping marks from several findings merge into one mark naming them all.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import regex

from gateway.mime.types import TextPart, TextSource
from gateway.model import Finding

#: Longest text shown in full on the message page (the raw source has everything).
MAX_SHOWN_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of text; ``findings`` holds the indexes of the findings it is evidence for."""

    text: str
    findings: tuple[int, ...] = ()
    anchor: str = ""  # id of the first mark of a finding, so the finding can link to it


@dataclass(frozen=True, slots=True)
class TextBlock:
    """One extracted text, cut into segments, with how the reader saw it."""

    index: int
    location: str
    kind: str  # visible, hidden, quoted or attachment
    segments: tuple[Segment, ...]
    truncated: bool
    filename: str | None


@dataclass
class Highlights:
    """Every text block, and for each finding the anchors of its marks (empty: not located)."""

    blocks: list[TextBlock]
    anchors: dict[int, list[str]] = field(default_factory=dict)


def _kind(part: TextPart) -> str:
    if part.hidden:
        return "hidden"
    if part.quoted:
        return "quoted"
    if part.source in (TextSource.ATTACHMENT, TextSource.ATTACHMENT_NAME):
        return "attachment"
    return "visible"


def _pattern(evidence: str) -> regex.Pattern[str] | None:
    words = evidence.split()
    if not words:
        return None
    return regex.compile(r"\s+".join(regex.escape(w) for w in words), regex.IGNORECASE | regex.UNICODE)


def _spans(text: str, evidence: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    start = text.find(evidence)
    while start >= 0 and evidence:
        found.append((start, start + len(evidence)))
        start = text.find(evidence, start + len(evidence))
    if found:
        return found
    pattern = _pattern(evidence)
    if pattern is None:
        return []
    return [(m.start(), m.end()) for m in pattern.finditer(text, timeout=1.0)]


def highlight(texts: tuple[TextPart, ...], findings: tuple[Finding, ...]) -> Highlights:
    """Cut ``texts`` into segments marking each finding's evidence."""
    shown = [t.text[:MAX_SHOWN_CHARS] for t in texts]
    marks: list[list[tuple[int, int, int]]] = [[] for _ in texts]  # per text: (start, end, finding)
    for number, finding in enumerate(findings):
        if not finding.evidence.strip():
            continue
        candidates = [i for i, t in enumerate(texts) if finding.location and t.location == finding.location]
        for i in candidates or range(len(texts)):
            marks[i].extend((s, e, number) for s, e in _spans(shown[i], finding.evidence))
    result = Highlights(blocks=[])
    for i, part in enumerate(texts):
        segments = _cut(shown[i], marks[i], i, result.anchors)
        result.blocks.append(
            TextBlock(i, part.location, _kind(part), segments, len(part.text) > MAX_SHOWN_CHARS, part.filename)
        )
    return result


def _cut(
    text: str, marks: list[tuple[int, int, int]], index: int, anchors: dict[int, list[str]]
) -> tuple[Segment, ...]:
    """Split ``text`` at every mark boundary; each piece lists the findings covering it."""
    if not marks:
        return (Segment(text),) if text else ()
    bounds = sorted({0, len(text), *(s for s, _, _ in marks), *(e for _, e, _ in marks)})
    pieces: list[tuple[int, str, tuple[int, ...]]] = []  # (offset, text, findings), neighbours merged
    for start, end in itertools.pairwise(bounds):
        covering = tuple(sorted({n for s, e, n in marks if s <= start and end <= e}))
        if pieces and pieces[-1][2] == covering:
            offset, previous, _ = pieces[-1]
            pieces[-1] = (offset, previous + text[start:end], covering)
        else:
            pieces.append((start, text[start:end], covering))
    segments: list[Segment] = []
    for offset, piece, covering in pieces:
        anchor = f"ev-{index}-{offset}" if covering else ""
        for n in covering:
            anchors.setdefault(n, []).append(anchor)
        segments.append(Segment(piece, covering, anchor))
    return tuple(segments)
