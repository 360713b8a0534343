"""Attachment analysis: true types, mismatches, text extraction per format, archives."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from gateway.config import ParserConfig
from gateway.mime import filetype as ft
from gateway.mime.attachments import AttachmentResult, analyse, extension_of
from gateway.mime.types import AttachmentFlag
from gateway.mime.walk import AttachmentJob
from tests.unit.mime.files import encrypted_pdf, make_docx, make_pdf, make_zip

LIMITS = ParserConfig(pool_workers=0)


def _analyse(data: bytes, filename: str, declared: str = "application/octet-stream") -> AttachmentResult:
    return analyse(AttachmentJob(data, filename, declared, "2", 0, False), LIMITS)


def test_docx_text_in_paragraph_order() -> None:
    """DOCX paragraphs come out as lines, in order."""
    result = _analyse(make_docx(["Erste Zeile", "Zweite & dritte"]), "brief.docx")
    assert result.detected_type == ft.DOCX
    assert result.text.split("\n")[:2] == ["Erste Zeile", "Zweite & dritte"]
    assert AttachmentFlag.MACROS not in result.flags


def test_xlsx_shared_strings() -> None:
    """XLSX text comes from the shared strings table."""
    data = make_zip(
        {
            "[Content_Types].xml": "<Types/>",
            "xl/workbook.xml": "<workbook/>",
            "xl/sharedStrings.xml": "<sst><si><t>Bitte bewerten</t></si><si><t>5 Sterne</t></si></sst>",
        }
    )
    result = _analyse(data, "liste.xlsx")
    assert result.detected_type == ft.XLSX
    assert "Bitte bewerten" in result.text
    assert "5 Sterne" in result.text


def test_odt_text() -> None:
    """ODF text documents are recognised by their mimetype member and read."""
    content = "<office:document-content><text:p>Hallo Welt</text:p><text:p>Zweite</text:p></office:document-content>"
    data = make_zip({"mimetype": ft.ODT, "content.xml": content})
    result = _analyse(data, "brief.odt")
    assert result.detected_type == ft.ODT
    assert result.text.split("\n")[:2] == ["Hallo Welt", "Zweite"]


def test_rtf_text_with_code_page_and_unicode() -> None:
    r"""RTF text decodes \'hh escapes with the declared code page and \uN characters."""
    rtf = rb"{\rtf1\ansi\ansicpg1250{\fonttbl{\f0 Arial;}}\f0 Prosz\'ea o opini\u261?\par druga linia}"
    result = _analyse(rtf, "list.rtf")
    assert result.detected_type == ft.RTF
    assert result.text.splitlines()[:2] == ["Proszę o opinią", "druga linia"]


def test_html_attachment_text_and_flag() -> None:
    """An HTML attachment is flagged HTML and its visible and hidden text extracted."""
    html = b"<html><body><p>Visible</p><p style='display:none'>Hidden words</p></body></html>"
    result = _analyse(html, "page.html", "text/html")
    assert AttachmentFlag.HTML in result.flags
    assert "Visible" in result.text
    assert "Hidden words" in result.text


def test_eml_attachment_text() -> None:
    """An attached .eml is parsed and its texts become the attachment's text."""
    eml = b"From: a@b.example\r\nSubject: forwarded\r\n\r\nplease change your review\r\n"
    result = _analyse(eml, "old.eml", "application/octet-stream")
    assert result.detected_type == ft.EML
    assert AttachmentFlag.NESTED_MESSAGE in result.flags
    assert "please change your review" in result.text


def test_pdf_text_and_encryption() -> None:
    """PDF text is extracted; a password-protected PDF is encrypted and unscannable."""
    plain = _analyse(make_pdf("Garantie 2 Jahre"), "garantie.pdf", "application/pdf")
    assert "Garantie 2 Jahre" in plain.text
    assert plain.unscannable is None
    locked = _analyse(encrypted_pdf("secret", "pw"), "locked.pdf", "application/pdf")
    assert AttachmentFlag.ENCRYPTED in locked.flags
    assert locked.unscannable == ("encrypted", "password-protected PDF")


def test_tar_gz_listing() -> None:
    """A tar.gz is listed member by member."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name in ("a.txt", "run.sh"):
            info = tarfile.TarInfo(name)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"abc"))
    result = _analyse(out.getvalue(), "files.tar.gz")
    assert [e.name for e in result.entries] == ["a.txt", "run.sh"]
    assert {AttachmentFlag.ARCHIVE, AttachmentFlag.SCRIPT} <= result.flags


def test_gzip_single_stream_bomb() -> None:
    """A gzip stream inflating past the limit is limit-exceeded, measured with a cap."""
    limits = ParserConfig(pool_workers=0, max_decompressed_bytes=1024 * 1024)
    data = gzip.compress(b"a" * (8 * 1024 * 1024))
    result = analyse(AttachmentJob(data, "x.gz", "application/gzip", "2", 0, False), limits)
    assert result.unscannable is not None
    assert result.unscannable[0] == "limit-exceeded"


def test_zipcrypto_member_is_encrypted() -> None:
    """A traditional (ZipCrypto) encrypted member marks the archive encrypted."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", b"x")
    data = bytearray(out.getvalue())
    # Set the encryption bit in the local and the central directory header.
    data[6] |= 0x1
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    result = _analyse(bytes(data), "a.zip")
    assert AttachmentFlag.ENCRYPTED in result.flags
    assert result.unscannable is not None
    assert result.unscannable[0] == "encrypted"


@pytest.mark.parametrize(
    ("detected", "extension", "declared", "mismatch"),
    [
        (ft.EXE, "pdf", "application/pdf", True),
        (ft.EXE, "pdf", "application/octet-stream", True),
        (ft.PDF, "pdf", "application/octet-stream", False),
        (ft.PDF, "", "application/pdf", False),
        (ft.DOCX, "doc", "application/msword", False),
        (ft.ZIP, "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
        (ft.TEXT, "csv", "text/csv", False),
        ("image/png", "jpg", "image/jpeg", False),
        ("image/png", "pdf", "application/pdf", True),
        (ft.PDF, "txt", "text/plain", True),
        ("", "pdf", "application/pdf", False),
    ],
)
def test_type_mismatch(detected: str, extension: str, declared: str, mismatch: bool) -> None:
    """Content contradicting the extension or the declared type is a mismatch; families are lenient."""
    assert ft.mismatch(detected, extension, declared) is mismatch


def test_extension_of() -> None:
    """Extensions are lowercase, taken from the last path component."""
    assert extension_of("Invoice.PDF") == "pdf"
    assert extension_of("dir\\evil.exe") == "exe"
    assert extension_of(".bashrc") == ""
    assert extension_of("noext") == ""


def test_attached_eml_with_executable_inside() -> None:
    """An .eml attachment carrying an EXE lists it and inherits the executable flag."""
    from tests.unit.mime.helpers import build

    inner = build("see the tool", attachments=(("tool.exe", "application/octet-stream", b"MZ" + bytes(200)),))
    result = _analyse(inner, "fwd.eml", "application/octet-stream")
    assert result.detected_type == ft.EML
    assert [e.name for e in result.entries] == ["tool.exe"]
    assert {AttachmentFlag.NESTED_MESSAGE, AttachmentFlag.EXECUTABLE} <= result.flags
    assert "see the tool" in result.text
