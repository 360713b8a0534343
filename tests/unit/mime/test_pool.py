"""The attachment pool: per-attachment timeout and memory limit, workers replaced."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time

from gateway.config import ParserConfig
from gateway.mime.parse import MessageParser
from tests.unit.mime.files import slow_pdf
from tests.unit.mime.helpers import build

SMALL = build("hello", attachments=(("notes.txt", "text/plain", b"see you"),))


async def test_timeout_marks_attachment_and_replaces_worker() -> None:
    """A slow PDF times out as unscannable 'timeout'; the next message is analysed normally."""
    parser = MessageParser(ParserConfig(pool_workers=1, attachment_timeout=0.3))
    try:
        started = time.monotonic()
        slow = await parser.parse(build("x", attachments=(("a.pdf", "application/pdf", slow_pdf(30_000)),)))
        assert time.monotonic() - started < 5
        assert [u.reason for u in slow.unscannable] == ["timeout"]
        assert slow.attachments[0].unscannable == "timeout"
        after = await parser.parse(SMALL)
        assert after.unscannable == ()
        assert after.attachments[0].detected_type == "text/plain"
    finally:
        parser.close()


async def test_memory_limit_marks_attachment_limit_exceeded() -> None:
    """An attachment that needs more than attachment_memory_mb ends as limit-exceeded, not a crash."""
    parser = MessageParser(ParserConfig(pool_workers=1, attachment_memory_mb=64))
    big = b"x" * (16 * 1024 * 1024)
    try:
        parsed = await parser.parse(build("x", attachments=(("big.txt", "text/plain", big),)))
        assert [u.reason for u in parsed.unscannable] == ["limit-exceeded"]
        after = await parser.parse(SMALL)
        assert after.unscannable == ()
    finally:
        parser.close()


async def test_large_attachment_does_not_hold_up_small_messages() -> None:
    """While one worker chews on a slow PDF, small messages keep being parsed."""
    parser = MessageParser(ParserConfig(pool_workers=2, attachment_timeout=20))
    try:
        await parser.parse(SMALL)  # start the workers
        slow_task = asyncio.create_task(
            parser.parse(build("x", attachments=(("a.pdf", "application/pdf", slow_pdf(40_000)),)))
        )
        await asyncio.sleep(0.05)
        started = time.monotonic()
        for _ in range(5):
            small = await parser.parse(SMALL)
            assert small.attachments[0].detected_type == "text/plain"
        small_elapsed = time.monotonic() - started
        assert not slow_task.done() or small_elapsed < 1.0
        slow = await slow_task
        assert slow.attachments[0].text_index is not None
    finally:
        parser.close()


async def test_cancelled_parse_kills_its_busy_worker() -> None:
    """A parse cancelled mid-analysis (session gone) kills its worker instead of leaking it."""
    parser = MessageParser(ParserConfig(pool_workers=1, attachment_timeout=20))
    try:
        task = asyncio.create_task(
            parser.parse(build("x", attachments=(("a.pdf", "application/pdf", slow_pdf(40_000)),)))
        )
        await asyncio.sleep(0.5)
        busy_worker = [p for p in multiprocessing.active_children() if p.name == "gateway-mime-worker"]
        assert len(busy_worker) == 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the kill runs in a thread
        assert busy_worker[0] not in multiprocessing.active_children()
        started = time.monotonic()
        after = await parser.parse(SMALL)
        assert time.monotonic() - started < 5
        assert after.unscannable == ()
    finally:
        parser.close()
