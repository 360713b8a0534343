"""Text and risk flags from documents: PDF, OOXML/ODF, RTF, legacy Office, TNEF.

Every function takes bytes and a character budget and returns a
:class:`DocumentFacts`; none of them writes to disk. They can be slow or
memory-hungry on hostile input, which is why :mod:`gateway.mime.pool` runs
them in worker processes with a time and memory limit.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from html import unescape

from gateway.mime.types import AttachmentFlag

# pypdf and oletools log every oddity of hostile files at WARNING; the parser
# records what matters as flags and defects instead.
for _name in ("pypdf", "olevba", "oletools", "olefile", "tnefparse", "msoffcrypto"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

MAX_PDF_PAGES = 200
MAX_XML_BYTES = 20 * 1024 * 1024  # per document part read out of an OOXML/ODF zip


@dataclass(slots=True)
class DocumentFacts:
    """What a document revealed."""

    text: str = ""
    flags: set[AttachmentFlag] = field(default_factory=set)
    unscannable: tuple[str, str] | None = None  # (reason, detail)
    names: list[str] = field(default_factory=list)  # embedded file names (TNEF attachments)


_TAG = re.compile(r"<[^>]{0,2000}>")
_PARA_END = re.compile(r"</(?:w:p|a:p|text:p|text:h|si|row|c)>|<(?:w:br|w:tab|text:line-break|text:tab)\b[^>]*/?>")


def xml_text(xml: bytes, max_chars: int) -> str:
    """Visible text of an Office XML part: paragraphs on their own lines, tags dropped."""
    text = xml[:MAX_XML_BYTES].decode("utf-8", "replace")
    text = _PARA_END.sub("\n", text)
    text = unescape(_TAG.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text)[:max_chars]


def _read_capped(archive: zipfile.ZipFile, name: str, cap: int) -> bytes:
    with archive.open(name) as handle:
        return handle.read(cap)


def ooxml(data: bytes, max_chars: int) -> DocumentFacts:
    """Text of DOCX/XLSX/PPTX/ODF, macros (vbaProject.bin) and embedded objects."""
    facts = DocumentFacts()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()[:5000]
            names = [info.filename for info in infos]
            lowered = [n.lower() for n in names]
            if any(info.flag_bits & 0x1 for info in infos):
                facts.flags.add(AttachmentFlag.ENCRYPTED)
                facts.unscannable = ("encrypted", "password-protected document")
                return facts
            if any(n.endswith(("vbaproject.bin", "vbadata.xml")) for n in lowered):
                facts.flags.add(AttachmentFlag.MACROS)
            if any("/embeddings/" in n or (n.endswith(".bin") and "activex" in n) or "objectreplacements/" in n
                   for n in lowered):  # fmt: skip
                facts.flags.add(AttachmentFlag.EMBEDDED_OBJECT)
            wanted = [
                n
                for n, low in zip(names, lowered, strict=True)
                if low in ("word/document.xml", "content.xml", "xl/sharedstrings.xml")
                or re.fullmatch(r"(word/(header|footer|footnotes|endnotes|comments)\d*\.xml)", low)
                or re.fullmatch(r"ppt/slides/slide\d+\.xml|ppt/notesslides/notesslide\d+\.xml", low)
                or re.fullmatch(r"xl/worksheets/sheet\d+\.xml", low)
            ]
            parts: list[str] = []
            budget = max_chars
            for name in wanted:
                if budget <= 0:
                    break
                info = archive.getinfo(name)
                if info.file_size > MAX_XML_BYTES:
                    facts.unscannable = ("limit-exceeded", f"{name} declares {info.file_size} bytes")
                text = xml_text(_read_capped(archive, name, MAX_XML_BYTES), budget)
                if name.lower().startswith("xl/worksheets/"):
                    # Only inline strings live in sheets; numbers would be noise.
                    text = " ".join(re.findall(r"<t[^>]*>([^<]*)</t>", _read_capped(archive, name, MAX_XML_BYTES)
                                               .decode("utf-8", "replace")))[:budget]  # fmt: skip
                parts.append(text)
                budget -= len(text)
            facts.text = "\n".join(p for p in parts if p.strip())
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, RuntimeError, NotImplementedError) as exc:
        facts.unscannable = ("parse-error", f"broken zip container: {type(exc).__name__}")
    return facts


def _pdf_names(data: bytes) -> bytes:
    """PDF name tokens with ``#xx`` escapes resolved (``/J#61vaScript`` -> ``/JavaScript``)."""
    return re.sub(rb"#([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def pdf(data: bytes, max_chars: int) -> DocumentFacts:
    """Text of a PDF, with JavaScript, embedded files and encryption flagged."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    facts = DocumentFacts()
    names = _pdf_names(data)
    if re.search(rb"/(?:JavaScript|JS)\b", names):
        facts.flags.add(AttachmentFlag.JAVASCRIPT)
    if re.search(rb"/(?:EmbeddedFiles?|RichMedia|Launch)\b", names):
        facts.flags.add(AttachmentFlag.EMBEDDED_OBJECT)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            facts.flags.add(AttachmentFlag.ENCRYPTED)
            # An owner-password-only PDF opens with the empty user password.
            try:
                opened = bool(reader.decrypt(""))
            except (PyPdfError, NotImplementedError, ValueError, KeyError, TypeError):
                opened = False
            if not opened:
                facts.unscannable = ("encrypted", "password-protected PDF")
                return facts
        root = reader.trailer.get("/Root")
        root_obj = root.get_object() if root is not None else {}
        action = root_obj.get("/OpenAction") if hasattr(root_obj, "get") else None
        if action is not None and "/JavaScript" in str(action.get_object()):
            facts.flags.add(AttachmentFlag.JAVASCRIPT)
        pages = []
        budget = max_chars
        for index, page in enumerate(reader.pages):
            if index >= MAX_PDF_PAGES or budget <= 0:
                facts.unscannable = ("limit-exceeded", f"PDF text beyond {MAX_PDF_PAGES} pages not read")
                break
            text = page.extract_text() or ""
            pages.append(text[:budget])
            budget -= len(text)
        facts.text = "\n".join(pages)
    except RecursionError:
        facts.unscannable = ("parse-error", "PDF structure nested too deeply")
    except LimitReachedError as exc:  # pypdf's own decompression-bomb guard
        facts.unscannable = ("limit-exceeded", f"PDF stream over pypdf's limit: {str(exc)[:80]}")
    except Exception as exc:  # pypdf raises a wide range of errors on hostile files
        facts.unscannable = ("parse-error", f"unreadable PDF: {type(exc).__name__}")
    return facts


def ole(data: bytes, max_chars: int) -> DocumentFacts:
    """Legacy Office (OLE2): macros via oletools, encryption via msoffcrypto, no text."""
    facts = DocumentFacts()
    if _office_encrypted(data):
        facts.flags.add(AttachmentFlag.ENCRYPTED)
        facts.unscannable = ("encrypted", "password-protected Office document")
    facts.flags |= vba_flags(data)
    try:
        import olefile

        with olefile.OleFileIO(data) as container:
            streams = ["/".join(e).lower() for e in container.listdir(streams=True, storages=True)]
        if any(s.startswith(("objectpool", "macros/", "_vba_project_cur")) or "\x01ole10native" in s for s in streams):
            facts.flags.add(AttachmentFlag.EMBEDDED_OBJECT if "objectpool" in str(streams) else AttachmentFlag.MACROS)
    except Exception as exc:  # olefile raises a wide range of errors on damaged containers
        facts.unscannable = facts.unscannable or ("parse-error", f"unreadable OLE file: {type(exc).__name__}")
    del max_chars  # legacy binary text extraction is out of scope (see docs)
    return facts


def _office_encrypted(data: bytes) -> bool:
    """Whether msoffcrypto (oletools' dependency) sees an encrypted Office file."""
    try:
        import msoffcrypto  # type: ignore[import-untyped]

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # msoffcrypto raises on formats it does not know; that is no verdict
        return False


def vba_flags(data: bytes) -> set[AttachmentFlag]:
    """MACROS when oletools finds VBA or Excel 4 (XLM) macros in an Office file."""
    # oletools 0.60.2 trips pyparsing deprecation warnings on import and warns on odd
    # files; warnings are no verdict (and under -W error they would hide the macros).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _vba_flags(data)


def _vba_flags(data: bytes) -> set[AttachmentFlag]:
    try:
        from oletools.olevba import VBA_Parser

        parser = VBA_Parser("attachment", data=data)
    except Exception:  # olevba raises its own and stdlib errors on odd input
        return set()
    found = False
    try:
        # Excel 4 (XLM) macro sheets are as dangerous as VBA and need their own check;
        # each detector may fail on its own on a damaged file.
        for detect in (parser.detect_vba_macros, parser.detect_xlm_macros):
            with contextlib.suppress(Exception):  # a detector failing is no verdict either way
                found = found or bool(detect())
    finally:
        parser.close()
    return {AttachmentFlag.MACROS} if found else set()


_RTF_CONTROL = re.compile(
    rb"\\([a-z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-z])|([{}])|[\r\n]+|([^\\{}\r\n]+)"
)
_RTF_SKIP = frozenset(
    b"fonttbl colortbl stylesheet info pict object objdata themedata datastore xmlnstbl listtable "
    b"listoverridetable rsidtbl generator header footer".split()
)


def rtf(data: bytes, max_chars: int) -> DocumentFacts:
    r"""Text of an RTF document; ``\\object`` / ``\\objdata`` is an embedded object."""
    facts = DocumentFacts()
    if re.search(rb"\\object\b|\\objdata\b|\\objemb\b", data):
        facts.flags.add(AttachmentFlag.EMBEDDED_OBJECT)
    codepage = re.search(rb"\\ansicpg(\d{3,5})", data[:4096])
    encoding = f"cp{codepage.group(1).decode()}" if codepage else "cp1252"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "cp1252"
    out: list[str] = []
    skip_depth: list[int] = []
    depth = 0
    pending: bytearray = bytearray()

    def flush() -> None:
        if pending:
            out.append(pending.decode(encoding, "replace"))
            pending.clear()

    size = 0
    skip_fallback = False
    for match in _RTF_CONTROL.finditer(data):
        word, arg, hexbyte, symbol, brace, plain = match.groups()
        if brace == b"{":
            depth += 1
            continue
        if brace == b"}":
            if skip_depth and skip_depth[-1] == depth:
                skip_depth.pop()
            depth -= 1
            continue
        if skip_depth:
            continue
        if word is not None:
            if word in _RTF_SKIP or match.group(0).startswith(b"\\*"):
                skip_depth.append(depth)
            elif word in (b"par", b"line", b"row", b"sect", b"page"):
                flush()
                out.append("\n")
            elif word == b"tab" or word == b"cell":
                flush()
                out.append("\t")
            elif word == b"u" and arg:
                flush()
                out.append(chr(int(arg) % 0x110000 if int(arg) >= 0 else int(arg) + 65536))
                skip_fallback = True  # \uN is followed by one fallback character (\uc1)
            continue
        if symbol == b"*":
            skip_depth.append(depth)
            continue
        if hexbyte is not None:
            if skip_fallback:
                skip_fallback = False
                continue
            pending.append(int(hexbyte, 16))
            continue
        if plain:
            if skip_fallback:
                skip_fallback = False
                plain = plain[1:]
            flush()
            out.append(plain.decode(encoding, "replace"))
            size += len(plain)
            if size > max_chars:
                break
    flush()
    facts.text = "".join(out)[:max_chars]
    return facts


def tnef(data: bytes, max_chars: int) -> DocumentFacts:
    """Body text and attachment names of a TNEF (winmail.dat) blob."""
    facts = DocumentFacts()
    try:
        from tnefparse import TNEF

        parsed = TNEF(data)
        parts: list[str] = []
        body = getattr(parsed, "body", None)
        if isinstance(body, bytes | str):
            parts.append(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
        html = getattr(parsed, "htmlbody", None)
        if isinstance(html, bytes | str) and html:
            from gateway.mime.html import html_to_text

            markup = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
            rendered = html_to_text(markup, max_chars)
            parts.append(rendered.visible)
            if rendered.hidden.strip():
                parts.append(rendered.hidden)
        for attachment in getattr(parsed, "attachments", [])[:1000]:
            name = getattr(attachment, "long_filename", None)
            name = name() if callable(name) else name
            name = name or getattr(attachment, "name", "") or ""
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            facts.names.append(str(name).strip("\x00"))
        facts.text = "\n".join(p for p in parts if p)[:max_chars]
        if facts.names:
            facts.flags.add(AttachmentFlag.ARCHIVE)
    except Exception as exc:  # tnefparse raises bare ValueErrors and struct errors on damaged files
        facts.unscannable = ("parse-error", f"unreadable TNEF: {type(exc).__name__}")
    return facts
