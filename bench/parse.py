"""Parser benchmark: corpus parse times, a 10 MB message with PDFs, and isolation under load.

Run with ``./dev bench parse``. Writes its figures into docs/benchmarks.md
between ``<!-- bench:parse:begin -->`` and ``<!-- bench:parse:end -->``.

1. Every SpamAssassin message parsed inline (``parse_message``): median, p99, max.
2. A ~10 MB message with six PDF attachments: inline, and through
   ``MessageParser`` with the process pool.
3. Small messages parsed concurrently through ``MessageParser`` (pool of 2),
   alone and while 10 MB messages are being parsed: their latency shows whether
   a large message holds up the others.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import ParserConfig  # noqa: E402
from gateway.mime.parse import MessageParser, parse_message  # noqa: E402
from tests.unit.mime.files import make_pdf  # noqa: E402
from tests.unit.mime.helpers import build  # noqa: E402

SPAM = ROOT / "tests" / "data" / "corpora" / "spamassassin" / "package" / "data"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:parse:begin -->", "<!-- bench:parse:end -->"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def corpus() -> list[bytes]:
    messages = []
    for path in sorted(SPAM.glob("*/*.txt")):
        raw = path.read_bytes()
        messages.append(raw.split(b"\n", 1)[1] if raw.startswith(b"From ") else raw)
    return messages


def large_message() -> bytes:
    rng = random.Random(7)
    attachments = []
    for index in range(6):
        ops = " ".join(f"(Rechnung {index} Position {i} Artikel {i * 7} EUR {i % 97},99) Tj T*" for i in range(1500))
        content = f"BT /F1 9 Tf 12 TL 40 800 Td {ops} ET".encode()
        pdf = make_pdf("", content=content, padding=rng.randbytes(1_150_000))
        attachments.append((f"rechnung-{index}.pdf", "application/pdf", pdf))
    return build("Ihre Rechnungen im Anhang.", attachments=tuple(attachments))


def bench_corpus(messages: list[bytes], limits: ParserConfig) -> list[str]:
    times = []
    for raw in messages:
        started = time.perf_counter()
        parse_message(raw, limits)
        times.append(time.perf_counter() - started)
    return [
        f"| SpamAssassin corpus, {len(times)} messages, inline | median {statistics.median(times) * 1000:.1f} ms | "
        f"p99 {percentile(times, 0.99) * 1000:.1f} ms | max {max(times) * 1000:.0f} ms | "
        f"total {sum(times):.1f} s |",
    ]


async def bench_large(raw: bytes, limits: ParserConfig) -> list[str]:
    started = time.perf_counter()
    inline = parse_message(raw, limits.model_copy(update={"pool_workers": 0}))
    inline_s = time.perf_counter() - started
    parser = MessageParser(limits)
    try:
        await parser.parse(build("warm-up", attachments=(("a.txt", "text/plain", b"x"),)))
        started = time.perf_counter()
        pooled = await parser.parse(raw)
        pooled_s = time.perf_counter() - started
    finally:
        parser.close()
    chars = sum(len(t.text) for t in pooled.texts)
    assert inline.attachments == pooled.attachments
    return [
        f"| {len(raw) / 1e6:.1f} MB message, 6 PDFs, inline | {inline_s:.2f} s | | | {chars} chars of text |",
        f"| same, MessageParser with {limits.pool_workers} pool workers | {pooled_s:.2f} s | | | |",
    ]


async def small_latencies(parser: MessageParser, smalls: list[bytes], concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = list(smalls)

    async def worker() -> None:
        while queue:
            raw = queue.pop()
            started = time.perf_counter()
            await parser.parse(raw)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def bench_isolation(smalls: list[bytes], large: bytes, limits: ParserConfig) -> list[str]:
    parser = MessageParser(limits)
    rows = []
    try:
        await parser.parse(smalls[0])
        started = time.perf_counter()
        alone = await small_latencies(parser, smalls, 8)
        alone_wall = time.perf_counter() - started
        big_tasks = [asyncio.create_task(parser.parse(large)) for _ in range(2)]
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        loaded = await small_latencies(parser, smalls, 8)
        small_wall = time.perf_counter() - started
        await asyncio.gather(*big_tasks)
        big_wall = time.perf_counter() - started
        for label, values in (("alone", alone), ("while two 10 MB messages parse", loaded)):
            rows.append(
                f"| {len(values)} small messages, 8 concurrent, {label} |"
                f" median {statistics.median(values) * 1000:.1f} ms | p99 {percentile(values, 0.99) * 1000:.1f} ms"
                f" | max {max(values) * 1000:.0f} ms | |"
            )
        rows.append(
            f"| wall time: small batch alone {alone_wall:.2f} s, under load {small_wall:.2f} s;"
            f" the two large messages done after {big_wall:.2f} s | | | | |"
        )
    finally:
        parser.close()
    return rows


def write(rows: list[str]) -> None:
    section = "\n".join(
        [
            BEGIN,
            "## Parser (`./dev bench parse`)",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f} "
            "(the machine is shared with other test runs, so tails are noisy).",
            "",
            "| what | time | | | |",
            "|---|---|---|---|---|",
            *rows,
            END,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


async def main() -> None:
    limits = ParserConfig(pool_workers=2)
    messages = corpus()
    rows = bench_corpus(messages, limits.model_copy(update={"pool_workers": 0})) if messages else []
    large = large_message()
    rows += await bench_large(large, limits)
    smalls = [m for m in messages if len(m) < 8_000][:400] or [build("hello")] * 400
    rows += await bench_isolation(smalls, large, limits)
    write(rows)
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
