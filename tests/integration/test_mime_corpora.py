"""The parser over real messages and files nobody here wrote.

CPython's test_email messages, mail-parser's test mails, SpamAssassin (a
fixed sample of ~300 in the default suite, all 6046 behind ``-m corpus``),
Debian's clamav-testfiles, oletools' and tnefparse's test data. Every input
parses without an exception within a per-message bound, and real properties
are asserted on a sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ParserConfig
from gateway.mime.attachments import analyse
from gateway.mime.parse import parse_message
from gateway.mime.types import AttachmentFlag, ParsedMessage, TextSource
from gateway.mime.walk import AttachmentJob

DATA = Path(__file__).resolve().parent.parent / "data"
CPYTHON = DATA / "cpython_email"
CORPORA = DATA / "corpora"
SPAM = CORPORA / "spamassassin" / "package" / "data"
MAIL_PARSER = CORPORA / "mail-parser" / "mail_parser-4.8.0" / "tests" / "mails"
OLETOOLS = CORPORA / "oletools" / "oletools-0.60.2" / "tests" / "test-data"
TNEF = CORPORA / "tnefparse" / "tnefparse-1.4.0" / "tests" / "examples"
CLAMAV = Path("/usr/share/clamav-testfiles")

LIMITS = ParserConfig(pool_workers=0)
PER_MESSAGE_SECONDS = 10.0  # a hang detector; typical messages take milliseconds (bench/parse.py)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} missing: run ./scripts/setup.sh test")
    return path


def _raw(path: Path) -> bytes:
    raw = path.read_bytes()
    # SpamAssassin files are mbox entries: drop the "From " envelope line.
    return raw.split(b"\n", 1)[1] if raw.startswith(b"From ") else raw


def _parse_bounded(raw: bytes) -> ParsedMessage:
    started = time.monotonic()
    parsed = parse_message(raw, LIMITS)
    elapsed = time.monotonic() - started
    assert elapsed < PER_MESSAGE_SECONDS, f"took {elapsed:.1f} s"
    assert "parse-error" not in parsed.defects, parsed.unscannable
    assert parsed.texts[0].source is TextSource.SUBJECT
    for item in (*parsed.links, *parsed.contacts, *parsed.order_ids):
        if item.span.text_index >= 0:
            assert item.span.end <= len(parsed.texts[item.span.text_index].text)
    return parsed


def _spamassassin(step: int) -> Iterator[Path]:
    files = sorted(p for p in _need(SPAM).glob("*/*.txt"))
    yield from files[::step]


def test_cpython_messages_all_parse() -> None:
    """Every CPython test_email message parses, the digest with its nested parts."""
    files = sorted(CPYTHON.glob("msg_*.txt"))
    assert len(files) >= 40
    for path in files:
        _parse_bounded(path.read_bytes())
    digest = _parse_bounded((CPYTHON / "msg_02.txt").read_bytes())
    assert digest.subject == "Ppp digest, Vol 1 #2 - 5 msgs"
    assert digest.part_count == 15
    nested_subjects = [t.text for t in digest.texts if t.source is TextSource.SUBJECT and t.depth == 1]
    assert nested_subjects == ["[Ppp] testing #1", "[Ppp] testing #3", "[Ppp] testing #4", "[Ppp] testing #5"]


def test_mail_parser_mails_all_parse() -> None:
    """mail-parser's test mails (malformed and Outlook ones included) parse; the PDF is read."""
    files = sorted(p for p in _need(MAIL_PARSER).iterdir() if p.is_file())
    assert len(files) >= 20
    for path in files:
        _parse_bounded(path.read_bytes())
    parsed = _parse_bounded((MAIL_PARSER / "mail_test_10").read_bytes())
    pdf = next(a for a in parsed.attachments if a.filename.endswith(".pdf"))
    assert pdf.detected_type == "application/pdf"
    assert pdf.text_index is not None
    assert len(parsed.texts[pdf.text_index].text) > 1000


def test_spamassassin_sample() -> None:
    """A fixed sample of ~300 SpamAssassin messages parses; links and HTML are found."""
    parsed = [_parse_bounded(_raw(path)) for path in _spamassassin(20)]
    assert len(parsed) >= 300
    assert sum(1 for p in parsed if p.links) > 150
    assert sum(1 for p in parsed if "html-only" in p.defects) > 20
    assert sum(1 for p in parsed if p.images) > 20


def test_spamassassin_known_message() -> None:
    """A known message: subject, sender and the mailing-list links it carries."""
    path = next(_need(SPAM).glob("easy-ham-1/00001.*.txt"))
    parsed = _parse_bounded(_raw(path))
    assert parsed.subject == "Re: New Sequences Window"
    assert parsed.is_reply
    assert parsed.from_addr == "kre@munnari.oz.au"
    assert {link.host for link in parsed.links} == {"fuchsia.cs.mu.oz.au", "listman.redhat.com"}


@pytest.mark.corpus
def test_spamassassin_full_corpus() -> None:
    """All 6046 SpamAssassin messages parse without an exception within the bound."""
    count = sum(1 for path in _spamassassin(1) if _parse_bounded(_raw(path)))
    assert count == 6046


def _analyse_file(path: Path) -> tuple[str, frozenset[AttachmentFlag], str | None, int, int]:
    result = analyse(AttachmentJob(path.read_bytes(), path.name, "application/octet-stream", "2", 0, False), LIMITS)
    return (
        result.detected_type,
        result.flags,
        result.unscannable and result.unscannable[0],
        len(result.text),
        len(result.entries),
    )


@pytest.mark.parametrize(
    ("name", "detected", "flags", "unscannable"),
    [
        ("clam.exe", "application/x-msdownload", {AttachmentFlag.EXECUTABLE}, None),
        ("clam-upx.exe", "application/x-msdownload", {AttachmentFlag.EXECUTABLE}, None),
        ("clam.zip", "application/zip", {AttachmentFlag.ARCHIVE, AttachmentFlag.EXECUTABLE}, None),
        ("clam.tar.gz", "application/gzip", {AttachmentFlag.ARCHIVE, AttachmentFlag.EXECUTABLE}, None),
        ("clam.7z", "application/x-7z-compressed", {AttachmentFlag.ARCHIVE}, "unsupported"),
        ("clam.cab", "application/vnd.ms-cab-compressed", {AttachmentFlag.ARCHIVE}, "unsupported"),
        ("clam.d64.zip", "application/zip", {AttachmentFlag.ARCHIVE}, "unsupported"),
        ("clam.pdf", "application/pdf", {AttachmentFlag.EMBEDDED_OBJECT}, None),
        ("clam.ole.doc", "application/msword", {AttachmentFlag.EMBEDDED_OBJECT}, None),
        ("clam.exe.rtf", "application/rtf", {AttachmentFlag.EMBEDDED_OBJECT}, None),
        ("clam.exe.html", "text/html", {AttachmentFlag.HTML}, None),
        ("clam.tnef", "application/ms-tnef", {AttachmentFlag.ARCHIVE}, None),
        ("clam.mail", "message/rfc822", {AttachmentFlag.NESTED_MESSAGE}, None),
    ],
)
def test_clamav_testfiles(name: str, detected: str, flags: set[AttachmentFlag], unscannable: str | None) -> None:
    """ClamAV's test files get their true type, risk flags and unscannable reason."""
    got_type, got_flags, got_unscannable, _chars, _entries = _analyse_file(_need(CLAMAV / name))
    assert got_type == detected
    assert flags <= got_flags
    assert got_unscannable == unscannable


def test_clamav_files_all_analysed_and_mail_parsed() -> None:
    """Every ClamAV test file is analysed without error; clam.mail's exe attachment is found."""
    for path in sorted(_need(CLAMAV).iterdir()):
        _, _, unscannable, _, _ = _analyse_file(path)
        assert unscannable != "parse-error" or path.name.endswith(".zip"), path.name
    parsed = _parse_bounded((CLAMAV / "clam.mail").read_bytes())
    exe = next(a for a in parsed.attachments if a.filename == "clam.exe")
    assert AttachmentFlag.EXECUTABLE in exe.flags


@pytest.mark.parametrize(
    ("relative", "flag"),
    [
        ("olevba/sample_with_vba.ppt", AttachmentFlag.MACROS),
        ("excel4-macros/excel4_sample_macro.xls", AttachmentFlag.MACROS),
        ("excel4-macros/excel4_sample_macro.xlsm", AttachmentFlag.MACROS),
        ("encrypted/encrypted.doc", AttachmentFlag.ENCRYPTED),
        ("encrypted/encrypted.docx", AttachmentFlag.ENCRYPTED),
        ("encrypted/encrypted.xls", AttachmentFlag.ENCRYPTED),
        ("encrypted/encrypted.pptx", AttachmentFlag.ENCRYPTED),
        ("oleobj/embedded-simple-2007.docx", AttachmentFlag.EMBEDDED_OBJECT),
        ("oleobj/embedded-simple-2007.doc", AttachmentFlag.EMBEDDED_OBJECT),
        ("oleobj/embedded-simple-2007.odt", AttachmentFlag.EMBEDDED_OBJECT),
        ("oleobj/embedded-simple-2007.docm", AttachmentFlag.MACROS),
    ],
)
def test_oletools_samples(relative: str, flag: AttachmentFlag) -> None:
    """The oletools samples: macros, encryption and embedded objects are detected."""
    _, flags, unscannable, _, _ = _analyse_file(_need(OLETOOLS / relative))
    assert flag in flags
    if flag is AttachmentFlag.ENCRYPTED:
        assert unscannable == "encrypted"


def test_oletools_all_files_analysed() -> None:
    """Every oletools test file is analysed without an exception escaping."""
    files = [p for p in _need(OLETOOLS).rglob("*") if p.is_file()]
    assert len(files) > 80
    for path in files:
        _analyse_file(path)


@pytest.mark.parametrize(
    ("name", "entries", "text"),
    [("two-files.tnef", 2, 0), ("one-file.tnef", 1, 0), ("body.tnef", 0, 3000), ("umlaut.tnef", 3, 0)],
)
def test_tnef_examples(name: str, entries: int, text: int) -> None:
    """winmail.dat files list their attachments and give their body text."""
    detected, _flags, unscannable, chars, got_entries = _analyse_file(_need(TNEF / name))
    assert detected == "application/ms-tnef"
    assert unscannable is None
    assert got_entries == entries
    assert chars >= text


def test_tnef_all_examples_analysed() -> None:
    """All tnefparse examples (bad checksums, garbage at the end) are analysed."""
    files = sorted(_need(TNEF).glob("*.tnef"))
    assert len(files) >= 19
    for path in files:
        assert _analyse_file(path)[0] == "application/ms-tnef"
