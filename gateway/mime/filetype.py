"""True file type from content, and what the extension and declared type claim.

The families that matter for policy are recognised from their magic bytes
here (and zip containers by their members, since DOCX, XLSX, ODT, JAR and
APK are all zips); anything else falls back to ``puremagic``'s signature
database. Types are MIME type strings; :data:`FAMILY` groups them so that
``invoice.pdf`` declared ``application/octet-stream`` is fine but an EXE
named ``invoice.pdf`` is a mismatch.
"""

from __future__ import annotations

import io
import re
import zipfile

import puremagic

PDF = "application/pdf"
ZIP = "application/zip"
OLE = "application/x-ole-storage"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
MSG = "application/vnd.ms-outlook"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCM = "application/vnd.ms-word.document.macroenabled.12"
XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
PPTM = "application/vnd.ms-powerpoint.presentation.macroenabled.12"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
EXE = "application/x-msdownload"
ELF = "application/x-executable"
MACHO = "application/x-mach-binary"
JAR = "application/java-archive"
APK = "application/vnd.android.package-archive"
RTF = "application/rtf"
TNEF = "application/ms-tnef"
GZIP = "application/gzip"
BZIP2 = "application/x-bzip2"
XZ = "application/x-xz"
SEVENZ = "application/x-7z-compressed"
RAR = "application/vnd.rar"
CAB = "application/vnd.ms-cab-compressed"
TAR = "application/x-tar"
ARJ = "application/x-arj"
ISO = "application/x-iso9660-image"
HTML = "text/html"
TEXT = "text/plain"
EML = "message/rfc822"
SCRIPT = "application/x-script"

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, PDF),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, OLE),
    (b"MZ", 0, EXE),
    (b"\x7fELF", 0, ELF),
    (b"\xcf\xfa\xed\xfe", 0, MACHO),
    (b"\xfe\xed\xfa\xcf", 0, MACHO),
    (b"\xca\xfe\xba\xbe", 0, MACHO),
    (b"{\\rtf", 0, RTF),
    (b"\x78\x9f\x3e\x22", 0, TNEF),
    (b"\x1f\x8b", 0, GZIP),
    (b"BZh", 0, BZIP2),
    (b"\xfd7zXZ\x00", 0, XZ),
    (b"7z\xbc\xaf\x27\x1c", 0, SEVENZ),
    (b"Rar!\x1a\x07", 0, RAR),
    (b"MSCF", 0, CAB),
    (b"\x60\xea", 0, ARJ),
    (b"ustar", 257, TAR),
    (b"CD001", 0x8001, ISO),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"BM", 0, "image/bmp"),
)

# Archive-like types (listed, not trusted) and executable/script types.
ARCHIVES = frozenset({ZIP, GZIP, BZIP2, XZ, SEVENZ, RAR, CAB, TAR, ARJ, ISO, JAR, APK})
EXECUTABLES = frozenset({EXE, ELF, MACHO, JAR, APK})
SCRIPT_EXTENSIONS = frozenset(
    [
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "hta",
        "ps1",
        "psm1",
        "bat",
        "cmd",
        "sh",
        "bash",
        "py",
        "pl",
        "rb",
        "php",
        "scr",
        "lnk",
        "reg",
        "jar",
        "msi",
        "com",
        "cpl",
        "vb",
    ]
)
EXECUTABLE_EXTENSIONS = frozenset(
    ["exe", "dll", "scr", "com", "pif", "msi", "cpl", "sys", "ocx", "apk", "app", "dmg", "elf", "bin", "run"]
)
MACRO_EXTENSIONS = frozenset(["docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "sldm"])

# Types that are the same family for mismatch purposes. Legacy OLE and OOXML Office
# files share one family: clients label one as the other, and an encrypted OOXML
# document *is* an OLE container.
FAMILY: dict[str, str] = {
    DOC: "office",
    XLS: "office",
    PPT: "office",
    MSG: "office",
    OLE: "office",
    DOCX: "office",
    XLSX: "office",
    PPTX: "office",
    DOCM: "office",
    XLSM: "office",
    PPTM: "office",
    "image/jpeg": "image",
    "image/png": "image",
    "image/gif": "image",
    "image/tiff": "image",
    "image/bmp": "image",
    "image/webp": "image",
    TEXT: "text",
    HTML: "text",  # a flag of its own (HTML); as a *type* it is text with tags
    "text/csv": "text",
    "application/json": "text",
    "application/xml": "text",
    "text/xml": "text",
    "text/calendar": "text",
    "text/vcard": "text",
    "text/x-vcard": "text",
}

EXTENSION_TYPES: dict[str, str] = {
    "pdf": PDF,
    "doc": DOC,
    "dot": DOC,
    "xls": XLS,
    "ppt": PPT,
    "msg": MSG,
    "docx": DOCX,
    "xlsx": XLSX,
    "pptx": PPTX,
    "docm": DOCM,
    "xlsm": XLSM,
    "pptm": PPTM,
    "odt": ODT,
    "ods": ODS,
    "odp": ODP,
    "rtf": RTF,
    "txt": TEXT,
    "csv": "text/csv",
    "log": TEXT,
    "htm": HTML,
    "html": HTML,
    "eml": EML,
    "zip": ZIP,
    "gz": GZIP,
    "tgz": GZIP,
    "bz2": BZIP2,
    "xz": XZ,
    "7z": SEVENZ,
    "rar": RAR,
    "cab": CAB,
    "tar": TAR,
    "arj": ARJ,
    "iso": ISO,
    "exe": EXE,
    "dll": EXE,
    "scr": EXE,
    "com": EXE,
    "jar": JAR,
    "apk": APK,
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "dat": TNEF,
}


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()[:5000]
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if mimetype in (ODT, ODS, ODP):
                    return mimetype
            lowered = [n.lower() for n in names]
            if "[content_types].xml" in lowered:
                content_types = archive.read(names[lowered.index("[content_types].xml")])[:200_000].lower()
                macro = b"macroenabled" in content_types or b"vbaproject" in content_types
                if any(n.startswith("word/") for n in lowered):
                    return DOCM if macro else DOCX
                if any(n.startswith("xl/") for n in lowered):
                    return XLSM if macro else XLSX
                if any(n.startswith("ppt/") for n in lowered):
                    return PPTM if macro else PPTX
            if "androidmanifest.xml" in lowered and "classes.dex" in lowered:
                return APK
            if "meta-inf/manifest.mf" in lowered and any(n.endswith(".class") for n in lowered):
                return JAR
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, RuntimeError, NotImplementedError):
        return ZIP
    return ZIP


def _ole_kind(data: bytes) -> str:
    import olefile

    try:
        ole = olefile.OleFileIO(data)
    except (OSError, ValueError, IndexError, TypeError, AttributeError):
        return OLE
    try:
        streams = {"/".join(entry).lower() for entry in ole.listdir(streams=True, storages=True)}
    except (OSError, ValueError, IndexError, TypeError, AttributeError):
        return OLE
    finally:
        ole.close()
    if "worddocument" in streams:
        return DOC
    if "workbook" in streams or "book" in streams:
        return XLS
    if "powerpoint document" in streams:
        return PPT
    if any(s.startswith("__substg1.0_") for s in streams):
        return MSG
    if "encryptedpackage" in streams:
        return OLE  # an encrypted OOXML document: the OLE shell is all we can see
    return OLE


# Tags that make a text file HTML to a browser even without <html> (fragments work).
_HTML_TAG = re.compile(rb"<(?:html|body|script|iframe|div|table|p|img|form|meta|style)[\s>/]|<a\s+href")


def _looks_like_text(data: bytes) -> str:
    head = data[:4096]
    if b"\x00" in head:
        return ""
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or _HTML_TAG.search(lowered[:2048]):
        return HTML
    if lowered.startswith((b"#!", b"@echo off")) or b"wscript.shell" in lowered or b"createobject(" in lowered:
        return SCRIPT
    first_lines = head.split(b"\n", 8)[:6]
    header_like = sum(1 for line in first_lines if line[:1].isalpha() and b": " in line[:80])
    starts_as_header = bool(first_lines) and first_lines[0][:1].isalpha() and b": " in first_lines[0][:80]
    if starts_as_header and header_like >= 2 and re.search(rb"(?im)^(?:from|received|message-id): ", head):
        return EML
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a character cut at the 4 KiB boundary is fine
            printable = sum(1 for b in head if b >= 0x20 or b in (9, 10, 13))
            return TEXT if printable / max(len(head), 1) > 0.95 else ""
    return TEXT


def detect(data: bytes) -> str:
    """The MIME type of ``data`` judged from its content alone (``""`` if unknown)."""
    if not data:
        return ""
    for magic, offset, kind in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if kind == EXE and len(data) < 64:
                continue  # "MZ" starting a short text is not a PE file
            if kind == "image/bmp" and len(data) < 26:
                continue
            if kind == OLE:
                return _ole_kind(data)
            return kind
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return _zip_kind(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    text_kind = _looks_like_text(data)
    if text_kind:
        return text_kind
    try:
        guesses = puremagic.magic_string(data[:65536])
    except (puremagic.PureError, ValueError, IndexError):
        return ""
    for guess in guesses:
        if guess.mime_type:
            return str(guess.mime_type)
    return ""


def family(mime_type: str) -> str:
    """A coarse family for comparing types (``office``, ``image``, ``text``...)."""
    return FAMILY.get(mime_type, mime_type)


def mismatch(detected: str, extension: str, declared: str) -> bool:
    """Whether the content contradicts the extension or the declared type.

    Generic declarations (``application/octet-stream``) and unknown extensions
    claim nothing; a text-family file may carry any text extension.
    """
    if not detected:
        return False
    fam = family(detected)
    claimed = EXTENSION_TYPES.get(extension)
    if claimed is not None and family(claimed) != fam and not (fam == "text" and family(claimed) == "text"):
        return True
    generic = ("application/octet-stream", "application/x-download", "application/force-download", "")
    if declared in generic or declared.startswith(("multipart/", "message/")):
        return False
    if family(declared) == fam:
        return False
    # Declared families that commonly label the right content under another name.
    lenient = {
        ZIP: {"application/x-zip-compressed", "application/x-zip"},
        PDF: {"application/x-pdf", "application/acrobat"},
        TNEF: {"application/vnd.ms-tnef"},
        GZIP: {"application/x-gzip", "application/x-gtar", "application/x-compressed-tar"},
        TEXT: {"text/csv", "text/x-log", "text/rtf", "application/rtf"} | set(FAMILY),
        RTF: {"text/rtf", "application/msword"},
        EML: {"text/plain"},
        HTML: {"text/plain"},
    }
    if declared in lenient.get(detected, set()):
        return False
    return not (declared.startswith("text/") and fam == "text")
