"""MessageParser: the pipeline's async parser, inline and with the worker pool."""

from __future__ import annotations

import asyncio

from gateway.config import ParserConfig
from gateway.mime.parse import MessageParser, parse_message
from gateway.mime.types import AttachmentFlag, TextSource
from tests.unit.mime.helpers import build


async def test_inline_parser_matches_parse_message() -> None:
    """With pool_workers=0 the async parser gives what parse_message gives."""
    limits = ParserConfig(pool_workers=0)
    raw = build("Hello, see shop.de", attachments=(("notes.txt", "text/plain", b"call 030 1234567"),))
    parser = MessageParser(limits)
    try:
        parsed = await parser.parse(raw)
    finally:
        parser.close()
    assert parsed == parse_message(raw, limits)
    assert [t.source for t in parsed.texts] == [
        TextSource.SUBJECT,
        TextSource.PLAIN,
        TextSource.ATTACHMENT_NAME,
        TextSource.ATTACHMENT,
    ]


async def test_pool_parser_analyses_attachments_in_workers() -> None:
    """With a pool, attachments are analysed in worker processes with the same result."""
    limits = ParserConfig(pool_workers=1)
    exe = b"MZ" + b"\x00" * 200
    raw = build("Invoice attached", attachments=(("invoice.pdf", "application/pdf", exe),))
    parser = MessageParser(limits)
    try:
        results = await asyncio.gather(parser.parse(raw), parser.parse(raw))
    finally:
        parser.close()
    for parsed in results:
        attachment = parsed.attachments[0]
        assert attachment.detected_type == "application/x-msdownload"
        assert {AttachmentFlag.TYPE_MISMATCH, AttachmentFlag.EXECUTABLE} <= attachment.flags
    assert results[0] == parse_message(raw, ParserConfig(pool_workers=0))
