"""Building attachment files inside the tests (PDF, DOCX/DOCM, zips, bombs)."""

from __future__ import annotations

import io
import zipfile
import zlib

import pyzipper


def make_pdf(
    text: str, javascript: str | None = None, content: bytes | None = None, flate: bool = False, padding: bytes = b""
) -> bytes:
    """A minimal one-page PDF showing ``text``, optionally running ``javascript`` on open.

    ``content`` replaces the page's content stream (``flate``: it is already deflated);
    ``padding`` is stored as an unreferenced binary stream (stands in for images).
    """
    content = content if content is not None else f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    stream_filter = b" /Filter /FlateDecode" if flate else b""
    open_action = b" /OpenAction 6 0 R" if javascript else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R" + open_action + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), stream_filter) + content + b"\nendstream",
    ]
    if javascript:
        objects.append(b"<< /S /JavaScript /JS (" + javascript.encode("latin-1") + b") >>")
    if padding:
        objects.append(b"<< /Length %d >>\nstream\n" % len(padding) + padding + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted_pdf(text: str, password: str) -> bytes:
    """``make_pdf(text)`` encrypted with a user password (pypdf's writer)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(text))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_DOC_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    '{kind}.main+xml"/></Types>'
)


def make_docx(paragraphs: list[str], macro: bool = False) -> bytes:
    """A Word document with ``paragraphs``; ``macro`` makes it a .docm with a VBA project."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    document = (
        '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    types = _DOC_TYPES.format(kind="wordprocessingml.document")
    if macro:
        types = types.replace(
            "officedocument.wordprocessingml.document.main+xml", "ms-word.document.macroEnabled.main+xml"
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("word/document.xml", document)
        if macro:
            archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    return out.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    """A plain deflated zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_bomb(member_bytes: int, members: int = 1) -> bytes:
    """A small zip whose members decompress to ``member_bytes`` zeros each."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        zeros = bytes(member_bytes)
        for index in range(members):
            archive.writestr(f"zeros{index}.bin", zeros)
    return out.getvalue()


def nested_zip(levels: int) -> bytes:
    """A zip inside a zip ``levels`` deep, a text file at the bottom."""
    data = make_zip({"deep.txt": b"bottom"})
    for level in range(levels - 1):
        data = make_zip({f"level{level}.zip": data})
    return data


def aes_zip(members: dict[str, bytes], password: bytes) -> bytes:
    """A WinZip AES-encrypted zip (pyzipper)."""
    out = io.BytesIO()
    with pyzipper.AESZipFile(out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password)
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def slow_pdf(operations: int) -> bytes:
    """A PDF whose page draws ``operations`` separate strings: slow to extract."""
    ops = " ".join(f"({i}) Tj" for i in range(operations))
    return make_pdf("", content=f"BT /F1 8 Tf 10 10 Td {ops} ET".encode())


def pdf_stream_bomb(megabytes: int) -> bytes:
    """A PDF whose content stream inflates to ``megabytes`` MiB of spaces."""
    compressor = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    deflated = b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()
    return make_pdf("", content=deflated, flate=True)
