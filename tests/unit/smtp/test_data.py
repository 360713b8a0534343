"""The DATA reader: smuggling variants refused, bare line ends normalised, limits exact."""

from __future__ import annotations

import asyncio

import pytest

from gateway.smtp.data import read_data

LIMIT = 1001


async def read(stream: bytes, max_size: int = 10_000) -> tuple[object, bytes]:
    reader = asyncio.StreamReader(limit=LIMIT)
    reader.feed_data(stream)
    reader.feed_eof()
    result = await read_data(reader, max_size=max_size, line_limit=LIMIT)
    rest = await reader.read()
    return result, rest


async def test_plain_message_and_dot_unstuffing() -> None:
    """A standard message ends at CRLF.CRLF; transparency dots are removed (RFC 5321 4.5.2)."""
    result, rest = await read(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n")
    assert result.refusal is None
    assert result.content == b"Subject: x\r\n\r\n.leading dot\r\n"
    assert rest == b"QUIT\r\n"


SMUGGLING = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "lf-dot-cr": b"\n.\r",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-crlf": b"\r.\r\n",
}


@pytest.mark.parametrize("ending", list(SMUGGLING.values()), ids=list(SMUGGLING))
async def test_smuggled_end_of_data_is_refused(ending: bytes) -> None:
    """Every non-standard end-of-data around a lone dot is refused with 550 5.5.2."""
    stream = b"Subject: a\r\n\r\nfirst" + ending + b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n.\r\n"
    result, rest = await read(stream)
    assert result.refusal is not None
    assert (result.refusal.code, result.refusal.status) == (550, "5.5.2")
    assert result.content == b""
    assert rest == b""  # everything up to the real end was consumed as data


@pytest.mark.parametrize(
    "line", [b"\x00.\r\n", b".\x00\r\n", b"te\x00xt\r\n"], ids=["nul-before", "nul-after", "nul-inside"]
)
async def test_nul_is_refused(line: bytes) -> None:
    """NUL in content (including around a dot) is refused with 550 5.6.0."""
    result, _ = await read(b"Subject: a\r\n\r\n" + line + b".\r\n")
    assert result.refusal is not None
    assert (result.refusal.code, result.refusal.status) == (550, "5.6.0")


async def test_bare_lf_elsewhere_is_normalised() -> None:
    """A bare LF or CR not around a dot becomes CRLF (Postfix's normalize)."""
    result, _ = await read(b"Subject: a\nX: b\r\n\r\nline one\nline two\rthree\r\n.\r\n")
    assert result.refusal is None
    assert result.normalised
    assert result.content == b"Subject: a\r\nX: b\r\n\r\nline one\r\nline two\r\nthree\r\n"


async def test_oversized_message_is_drained_then_refused() -> None:
    """Over max_size: 552 5.3.4 after the final dot, and the next command is intact."""
    body = b"x" * 98 + b"\r\n"
    result, rest = await read(b"Subject: a\r\n\r\n" + body * 20 + b".\r\nQUIT\r\n", max_size=1000)
    assert result.refusal is not None
    assert (result.refusal.code, result.refusal.status) == (552, "5.3.4")
    assert rest == b"QUIT\r\n"


async def test_overlong_line_is_drained_then_refused() -> None:
    """A line over 1001 octets: 500 5.5.6 after the final dot, next command intact."""
    result, rest = await read(b"Subject: a\r\n\r\n" + b"y" * 5000 + b"\r\nok\r\n.\r\nNOOP\r\n")
    assert result.refusal is not None
    assert (result.refusal.code, result.refusal.status) == (500, "5.5.6")
    assert rest == b"NOOP\r\n"


async def test_line_at_the_limit_is_accepted() -> None:
    """998 octets of text plus CRLF (RFC 5322 2.1.1) is fine; a stuffed dot may add one (1001)."""
    line = b"." + b"z" * 998 + b"\r\n"  # 1001 octets on the wire
    result, _ = await read(line + b".\r\n")
    assert result.refusal is None
    assert result.content == b"z" * 998 + b"\r\n"
