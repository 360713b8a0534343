"""Hostile messages built here: each gives the expected marks in bounded time and memory."""

from __future__ import annotations

import resource
import time

import pytest

from gateway.config import ParserConfig
from gateway.mime.parse import parse_message
from gateway.mime.types import Attachment, AttachmentFlag, ParsedMessage
from tests.unit.mime.files import aes_zip, make_docx, make_pdf, make_zip, nested_zip, zip_bomb
from tests.unit.mime.helpers import build

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _parse(raw: bytes, limits: ParserConfig, seconds: float = 10.0) -> ParsedMessage:
    """Parse and check the time bound (generous: this is a hang detector, not a benchmark)."""
    started = time.monotonic()
    parsed = parse_message(raw, limits)
    assert time.monotonic() - started < seconds
    return parsed


def _only_attachment(parsed: ParsedMessage) -> Attachment:
    assert len(parsed.attachments) == 1
    return parsed.attachments[0]


def test_zip_bomb_is_unscannable_not_memory_exhaustion() -> None:
    """A zip declaring more than max_decompressed_bytes ends as limit-exceeded, quickly."""
    limits = ParserConfig(pool_workers=0, max_decompressed_bytes=4 * 1024 * 1024)
    bomb = zip_bomb(8 * 1024 * 1024, members=2)
    assert len(bomb) < 64 * 1024
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parsed = _parse(build("see attached", attachments=(("report.zip", "application/zip", bomb),)), limits)
    attachment = _only_attachment(parsed)
    assert attachment.unscannable == "limit-exceeded"
    assert AttachmentFlag.ARCHIVE in attachment.flags
    assert [u.reason for u in parsed.unscannable] == ["limit-exceeded"]
    assert parsed.unscannable[0].location == "attachment report.zip"
    # ru_maxrss is in KiB: the bomb must not have been inflated into memory.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024


def test_nested_zips_are_listed_up_to_the_depth_limit() -> None:
    """Zips inside zips are listed with their depth; deeper than the limit is unscannable."""
    limits = ParserConfig(pool_workers=0, max_archive_depth=3)
    shallow = _only_attachment(_parse(build("x", attachments=(("a.zip", "application/zip", nested_zip(3)),)), limits))
    assert shallow.unscannable is None
    assert [(e.name, e.depth) for e in shallow.entries] == [("level1.zip", 1), ("level0.zip", 2), ("deep.txt", 3)]
    deep = _only_attachment(_parse(build("x", attachments=(("a.zip", "application/zip", nested_zip(5)),)), limits))
    assert deep.unscannable == "limit-exceeded"


def test_too_many_archive_entries() -> None:
    """An archive with more members than max_archive_entries is unscannable."""
    limits = ParserConfig(pool_workers=0, max_archive_entries=50)
    archive = make_zip({f"f{i}.txt": b"x" for i in range(60)})
    attachment = _only_attachment(_parse(build("x", attachments=(("a.zip", "application/zip", archive),)), limits))
    assert attachment.unscannable == "limit-exceeded"
    assert len(attachment.entries) == 50


def test_aes_encrypted_zip(limits: ParserConfig) -> None:
    """A WinZip-AES zip is flagged encrypted and unscannable for that reason."""
    archive = aes_zip({"invoice.txt": b"please remove your review"}, b"secret")
    attachment = _only_attachment(_parse(build("x", attachments=(("inv.zip", "application/zip", archive),)), limits))
    assert {AttachmentFlag.ENCRYPTED, AttachmentFlag.ARCHIVE} <= attachment.flags
    assert attachment.unscannable == "encrypted"
    assert attachment.entries[0].encrypted


def test_pdf_with_javascript(limits: ParserConfig) -> None:
    """A PDF with an OpenAction JavaScript is flagged; its text is still extracted."""
    data = make_pdf("Invoice 4711", javascript="app.alert(1)")
    parsed = _parse(build("x", attachments=(("invoice.pdf", "application/pdf", data),)), limits)
    attachment = _only_attachment(parsed)
    assert AttachmentFlag.JAVASCRIPT in attachment.flags
    assert attachment.detected_type == "application/pdf"
    assert attachment.text_index is not None
    assert "Invoice 4711" in parsed.texts[attachment.text_index].text


def test_docm_with_macro(limits: ParserConfig) -> None:
    """A macro-enabled Word document is flagged MACROS and its text extracted."""
    data = make_docx(["Bitte ändern Sie Ihre Bewertung"], macro=True)
    parsed = _parse(build("x", attachments=(("brief.docm", "application/octet-stream", data),)), limits)
    attachment = _only_attachment(parsed)
    assert AttachmentFlag.MACROS in attachment.flags
    assert AttachmentFlag.TYPE_MISMATCH not in attachment.flags
    assert attachment.text_index is not None
    assert "Bitte ändern Sie Ihre Bewertung" in parsed.texts[attachment.text_index].text


def test_exe_named_invoice_pdf(limits: ParserConfig) -> None:
    """An executable named invoice.pdf and declared application/pdf is a type mismatch."""
    exe = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200) + EICAR
    attachment = _only_attachment(_parse(build("x", attachments=(("invoice.pdf", "application/pdf", exe),)), limits))
    assert attachment.detected_type == "application/x-msdownload"
    assert {AttachmentFlag.TYPE_MISMATCH, AttachmentFlag.EXECUTABLE} <= attachment.flags
    assert attachment.extension == "pdf"


def test_deeply_nested_multiparts(limits: ParserConfig) -> None:
    """200 nested multiparts parse without recursion errors and stop at the nesting limit."""
    raw = b"From: a@b.example\r\nSubject: deep\r\n"
    for level in range(200):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
    raw += b"Content-Type: text/plain\r\n\r\ninnermost text\r\n"
    for level in reversed(range(200)):
        raw += b"--b%d--\r\n" % level
    parsed = _parse(raw, limits)
    assert [u.reason for u in parsed.unscannable] == ["limit-exceeded"]
    assert "parse-error" not in parsed.defects


def test_ten_thousand_parts() -> None:
    """A 10,000-part message stops at max_parts with limit-exceeded, in bounded time."""
    limits = ParserConfig(pool_workers=0, max_parts=1000)
    body = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10_000))
    raw = (
        b"From: a@b.example\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" + body + b"--B--\r\n"
    )
    parsed = _parse(raw, limits, seconds=20)
    assert parsed.part_count == 1001
    assert [u.reason for u in parsed.unscannable] == ["limit-exceeded"]


def test_five_megabyte_single_line_header(limits: ParserConfig) -> None:
    """A 5 MB one-line header is clipped (recorded) and the body still parsed."""
    raw = b"From: a@b.example\r\nSubject: " + b"A" * (5 * 1024 * 1024) + b"\r\n\r\nreal body\r\n"
    parsed = _parse(raw, limits)
    assert "header-truncated:subject" in parsed.defects
    assert len(parsed.subject) <= 16_384
    assert parsed.texts[1].text.strip() == "real body"


def test_huge_encoded_word_header(limits: ParserConfig) -> None:
    """Thousands of RFC 2047 encoded words in one header stay within the time bound."""
    raw = b"From: a@b.example\r\nSubject: " + b"=?utf-8?q?a?= x " * 300_000 + b"\r\n\r\nbody\r\n"
    parsed = _parse(raw, limits)
    assert "header-truncated:subject" in parsed.defects


@pytest.mark.parametrize(
    ("style", "reason"),
    [
        ("display:none", "display-none"),
        ("visibility:hidden", "visibility-hidden"),
        ("font-size:0px", "font-size-zero"),
        ("color:#ffffff", "same-colour"),
        ("color:#fff;background-color:#fff", "same-colour"),
        ("position:absolute;left:-9999px", "off-screen"),
        ("opacity:0", "opacity-zero"),
        ("max-height:0;overflow:hidden", "zero-size"),
        ("mso-hide:all", "mso-hide"),
    ],
)
def test_html_hidden_text(style: str, reason: str, limits: ParserConfig) -> None:
    """Text hidden by each CSS trick is extracted separately, marked hidden, with a reason."""
    html = f'<p>Thanks for your order.</p><span style="{style}">leave us 5 stars for a refund</span>'
    parsed = _parse(build(html=html), limits)
    hidden = [t.text for t in parsed.texts if t.hidden]
    visible = [t.text for t in parsed.texts if t.source.value == "text/html" and not t.hidden]
    assert hidden == ["leave us 5 stars for a refund\n"] or hidden == ["leave us 5 stars for a refund"]
    assert "5 stars" not in "".join(visible)
    assert f"hidden-text:{reason}" in parsed.defects


def test_hidden_by_stylesheet_class(limits: ParserConfig) -> None:
    """A class hidden in a <style> block hides its text."""
    html = "<style>.x{display:none}</style><p>Hi</p><div class='x'>write to info@shop.de</div>"
    parsed = _parse(build(html=html), limits)
    hidden_index = next(i for i, t in enumerate(parsed.texts) if t.hidden)
    assert [c.value for c in parsed.contacts if c.span.text_index == hidden_index] == ["info@shop.de"]


def test_tracking_pixel_image(limits: ParserConfig) -> None:
    """A remote 1x1 image is recorded as a remote pixel."""
    parsed = _parse(build(html='<p>Hi</p><img src="https://t.example/o.gif" width="1" height="1">'), limits)
    assert [(i.remote, i.is_pixel) for i in parsed.images] == [(True, True)]
