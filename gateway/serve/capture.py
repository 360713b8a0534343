"""The embedded capture next hop of ``gateway serve --dev``.

A real aiosmtpd server standing in for the marketplace relay: every message it
receives is written, exactly as received, to
``<data_dir>/captured/<timestamp>-<id>.eml`` so a newcomer can open what the
gateway relayed (with its ``Received:`` header on top). The envelope goes into
the log line, not into the file, so the file is byte for byte what was sent.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

log = structlog.get_logger("gateway.capture")


class CaptureHandler:
    """aiosmtpd handler writing each message to its own file (tmp then rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        """Write the message and answer 250 only once it is on disk."""
        content = envelope.original_content or b""
        path = await asyncio.to_thread(self._write, content)
        log.info(
            "message_captured",
            path=str(path),
            sender=envelope.mail_from,
            recipients=list(envelope.rcpt_tos),
            size=len(content),
        )
        return f"250 2.0.0 Ok: captured as {path.name}"

    def _write(self, content: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        partial = path.with_suffix(".tmp")
        with open(partial, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        partial.rename(path)
        return path


async def start_capture(directory: Path, host: str, port: int) -> asyncio.Server:
    """Serve the capture hop on ``host:port`` (0 picks a free port); files go to ``directory``."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    handler = CaptureHandler(directory)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="capture.localhost", ident="ESMTP capture", enable_SMTPUTF8=True, loop=loop),
        host,
        port,
    )
