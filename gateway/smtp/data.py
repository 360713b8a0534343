r"""Reading the DATA phase: size and line limits, and the SMTP smuggling defence.

The message ends only at ``<CRLF>.<CRLF>`` (RFC 5321 4.1.1.4). SMTP smuggling
(CVE-2023-51764 and kin) hides a second message behind a non-standard end,
such as ``<LF>.<LF>``, hoping one server of the chain treats it as the end of
DATA and the next does not. This reader:

- refuses a message in which a lone dot sits between line breaks of which one
  is a bare CR or bare LF (``\n.\n``, ``\r.\r``, ``\r\n.\n``, ``\n.\r\n``,
  ``\n.\r``, ``\r\n.\r``, ``\r.\r\n``): 550 5.5.2;
- refuses NUL anywhere in the content (so ``\0.`` and ``.\0`` cannot pose as a
  dot line): 550 5.6.0;
- normalises every other bare CR or LF to CRLF (as Postfix's
  ``smtpd_forbid_bare_newline = normalize`` does), so what is stored, parsed and
  relayed is the same standard bytes.

Oversized messages and over-long lines are read to the end and discarded
before the error reply (RFC 5321 4.2.5: the reply comes after the final dot).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from gateway.smtp import replies
from gateway.smtp.replies import Reply

# A dot alone between line breaks (or at the start of a transmitted line) where a
# break is a bare CR or LF; the standard ".\r\n" line is the real end of DATA.
_SMUGGLED_DOT = re.compile(rb"(?:^|[\r\n])\.[\r\n]")
_BARE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class DataResult:
    """What the DATA phase produced: the content, or why it was refused.

    Attributes:
        content: the message with dots unstuffed and line endings normalised
            (empty when refused).
        size: octets received, as RFC 1870 counts them.
        refusal: the reply to send instead of processing, if any.
        normalised: some bare CR/LF was turned into CRLF.
    """

    content: bytes
    size: int
    refusal: Reply | None = None
    normalised: bool = False


async def read_data(reader: asyncio.StreamReader, *, max_size: int, line_limit: int) -> DataResult:
    """Read DATA content up to the terminating dot line.

    Raises:
        asyncio.IncompleteReadError: the client closed the connection mid-message.
    """
    lines: list[bytes] = []
    size = 0
    refusal: Reply | None = None
    normalised = False
    in_long_line = False
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            # Longer than the stream limit: consume what is buffered and keep
            # going until the line's end; the reply waits for the final dot.
            chunk = await reader.read(exc.consumed)
            size += len(chunk)
            in_long_line = True
            if refusal is None:
                refusal = replies.data_line_too_long(line_limit)
                lines.clear()
            continue
        if in_long_line:
            in_long_line = False
            size += len(line)
            continue
        if line == b".\r\n":
            break
        size += len(line)
        if refusal is not None:
            continue
        if size > max_size:
            refusal = replies.size_exceeded(max_size)
            lines.clear()
            continue
        if len(line) > line_limit:
            refusal = replies.data_line_too_long(line_limit)
            lines.clear()
            continue
        if b"\x00" in line:
            refusal = replies.nul_refused()
            lines.clear()
            continue
        body = line[:-2]
        if b"\r" in body or b"\n" in body:
            if _SMUGGLED_DOT.search(line):
                refusal = replies.smuggling_refused()
                lines.clear()
                continue
            line = _BARE_BREAK.sub(b"\r\n", body) + b"\r\n"
            normalised = True
        # RFC 5321 4.5.2: remove the transparency dot.
        lines.append(line[1:] if line.startswith(b".") else line)
    if refusal is not None:
        return DataResult(b"", size, refusal)
    return DataResult(b"".join(lines), size, normalised=normalised)
