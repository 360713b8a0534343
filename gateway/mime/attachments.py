"""What an attachment really is: true type, flags, extracted text, archive members.

:func:`analyse` is a pure function of the attachment's bytes and the limits,
safe to run in a worker process (its inputs and result pickle). It never
raises: a failure inside becomes ``unscannable = ("parse-error", ...)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.config import ParserConfig
from gateway.mime import filetype as ft
from gateway.mime.archives import Listing, list_tar, list_zip, single_stream
from gateway.mime.charsets import decode_bytes
from gateway.mime.documents import DocumentFacts, ole, ooxml, pdf, rtf, tnef, vba_flags
from gateway.mime.html import html_to_text
from gateway.mime.types import ArchiveEntry, AttachmentFlag
from gateway.mime.walk import AttachmentJob


@dataclass(frozen=True, slots=True)
class AttachmentResult:
    """The analysis of one :class:`~gateway.mime.walk.AttachmentJob`."""

    detected_type: str
    flags: frozenset[AttachmentFlag]
    text: str
    entries: tuple[ArchiveEntry, ...] = ()
    unscannable: tuple[str, str] | None = None
    sha256: str = ""
    size: int = 0


def extension_of(filename: str) -> str:
    """Lowercase extension without the dot (``"pdf"``), ``""`` when none."""
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if "." not in base.strip("."):
        return ""
    return base.rsplit(".", 1)[1].strip().lower()[:16]


def analyse(job: AttachmentJob, limits: ParserConfig) -> AttachmentResult:
    """Analyse one attachment (see the module docstring)."""
    data = job.data
    digest = hashlib.sha256(data).hexdigest()
    try:
        return _analyse(job, limits, digest)
    except RecursionError:
        reason = ("parse-error", "structure nested too deeply")
    except MemoryError:
        reason = ("limit-exceeded", "attachment needed too much memory")
    except Exception as exc:  # any bug or library failure: recorded, never raised
        reason = ("parse-error", f"{type(exc).__name__} while analysing")
    detected = ""
    try:
        detected = ft.detect(data)
    except Exception:  # detection itself failed; keep the reason above
        detected = ""
    return AttachmentResult(detected, frozenset(_name_flags(job, detected)), "", (), reason, digest, len(data))


def _name_flags(job: AttachmentJob, detected: str) -> set[AttachmentFlag]:
    flags: set[AttachmentFlag] = set()
    extension = extension_of(job.filename)
    if job.inline:
        flags.add(AttachmentFlag.INLINE)
    if detected in ft.EXECUTABLES or extension in ft.EXECUTABLE_EXTENSIONS:
        flags.add(AttachmentFlag.EXECUTABLE)
    if detected == ft.SCRIPT or extension in ft.SCRIPT_EXTENSIONS:
        flags.add(AttachmentFlag.SCRIPT)
    if detected in ft.ARCHIVES or ft.EXTENSION_TYPES.get(extension) in ft.ARCHIVES:
        flags.add(AttachmentFlag.ARCHIVE)
    if detected == ft.HTML or extension in ("htm", "html", "xhtml", "mht", "mhtml", "svg"):
        flags.add(AttachmentFlag.HTML)
    if extension in ft.MACRO_EXTENSIONS or detected in (ft.DOCM, ft.XLSM, ft.PPTM):
        flags.add(AttachmentFlag.MACROS)
    if detected == ft.EML or extension in ("eml", "msg") or detected == ft.MSG:
        flags.add(AttachmentFlag.NESTED_MESSAGE)
    if ft.mismatch(detected, extension, job.declared_type):
        flags.add(AttachmentFlag.TYPE_MISMATCH)
    return flags


def _analyse(job: AttachmentJob, limits: ParserConfig, digest: str) -> AttachmentResult:
    data = job.data
    detected = ft.detect(data)
    flags = _name_flags(job, detected)
    budget = limits.max_text_chars
    facts = DocumentFacts()
    listing: Listing | None = None
    if detected == ft.PDF:
        facts = pdf(data, budget)
    elif detected in (ft.DOCX, ft.XLSX, ft.PPTX, ft.DOCM, ft.XLSM, ft.PPTM, ft.ODT, ft.ODS, ft.ODP):
        facts = ooxml(data, budget)
        if detected in (ft.DOCM, ft.XLSM, ft.PPTM) or AttachmentFlag.MACROS in facts.flags:
            facts.flags |= vba_flags(data) | {AttachmentFlag.MACROS}
    elif detected in (ft.OLE, ft.DOC, ft.XLS, ft.PPT, ft.MSG):
        facts = ole(data, budget)
    elif detected == ft.RTF:
        facts = rtf(data, budget)
    elif detected == ft.TNEF:
        facts = tnef(data, budget)
    elif detected == ft.HTML:
        rendered = html_to_text(decode_bytes(data[: budget * 4], None).text, budget)
        facts.text = "\n".join(t for t in (rendered.visible, rendered.hidden) if t.strip())
    elif detected == ft.EML:
        facts = _nested_message(data, job.depth + 1, limits)
    elif detected in (ft.TEXT, ft.SCRIPT) or (not detected and job.declared_type.startswith("text/")):
        facts.text = decode_bytes(data[:budget], None).text
    elif detected in (ft.ZIP, ft.JAR, ft.APK):
        listing = list_zip(data, limits)
    elif detected == ft.TAR:
        listing = list_tar(data, limits)
    elif detected in (ft.GZIP, ft.BZIP2, ft.XZ):
        # Measure the decompressed stream first (capped); only then look for a tar inside.
        listing = single_stream(data, {ft.GZIP: "gzip", ft.BZIP2: "bzip2", ft.XZ: "xz"}[detected], limits)
        if listing.unscannable is None:
            inner_tar = list_tar(data, limits)
            if inner_tar.unscannable is None and inner_tar.entries:
                listing = inner_tar
    elif detected in (ft.SEVENZ, ft.RAR, ft.CAB, ft.ARJ, ft.ISO):
        facts.unscannable = ("unsupported", f"{detected} archives cannot be listed")
    flags |= facts.flags
    unscannable = facts.unscannable
    entries: tuple[ArchiveEntry, ...] = ()
    if facts.names:
        entries = tuple(ArchiveEntry(name, 0, 0, False, 1) for name in facts.names)
    if listing is not None:
        entries = tuple(listing.entries)
        if listing.encrypted:
            flags.add(AttachmentFlag.ENCRYPTED)
            unscannable = unscannable or ("encrypted", "archive members are password-protected")
        unscannable = listing.unscannable or unscannable
        if any(ft.EXTENSION_TYPES.get(extension_of(e.name)) in ft.EXECUTABLES for e in entries):
            flags.add(AttachmentFlag.EXECUTABLE)
        if any(extension_of(e.name) in ft.SCRIPT_EXTENSIONS for e in entries):
            flags.add(AttachmentFlag.SCRIPT)
    return AttachmentResult(detected, frozenset(flags), facts.text[:budget], entries, unscannable, digest, len(data))


# Flags of attachments inside an attached message that carry over to the message.
_INHERITED = frozenset(
    {
        AttachmentFlag.EXECUTABLE,
        AttachmentFlag.SCRIPT,
        AttachmentFlag.MACROS,
        AttachmentFlag.ENCRYPTED,
        AttachmentFlag.JAVASCRIPT,
        AttachmentFlag.EMBEDDED_OBJECT,
        AttachmentFlag.TYPE_MISMATCH,
        AttachmentFlag.ARCHIVE,
    }
)


def _nested_message(data: bytes, depth: int, limits: ParserConfig) -> DocumentFacts:
    """An attached .eml: its texts, and its own attachments analysed (depth-limited).

    The inner attachments' names become entries and their risky flags carry over,
    so an EXE inside a forwarded message is as visible as one attached directly.
    """
    from gateway.mime.walk import walk

    facts = DocumentFacts()
    if depth > limits.max_depth:
        facts.unscannable = ("limit-exceeded", f"attached message nesting over {limits.max_depth}")
        return facts
    walked = walk(data, limits)
    texts = [t.text for t in walked.texts if t.text.strip()]
    for inner in walked.jobs:
        result = analyse(
            AttachmentJob(inner.data, inner.filename, inner.declared_type, inner.part, depth, False), limits
        )
        facts.names.append(inner.filename or f"(part {inner.part})")
        facts.flags |= result.flags & _INHERITED
        if result.text.strip():
            texts.append(result.text)
        if result.unscannable and facts.unscannable is None:
            facts.unscannable = result.unscannable
    if walked.unscannable and facts.unscannable is None:
        facts.unscannable = (walked.unscannable[0].reason, walked.unscannable[0].detail)
    facts.text = "\n\n".join(texts)[: limits.max_text_chars]
    return facts
