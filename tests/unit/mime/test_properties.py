"""Property-based tests: any bytes, any mutation of a real message, never raise or hang."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ParserConfig
from gateway.mime.contacts import find_contacts
from gateway.mime.html import html_to_text
from gateway.mime.links import find_links
from gateway.mime.parse import parse_message
from gateway.mime.quotes import find_trailing_quote
from gateway.mime.types import ParsedMessage, TextSource

LIMITS = ParserConfig(pool_workers=0, max_text_chars=200_000)
SEEDS = [p.read_bytes() for p in sorted((Path(__file__).parents[2] / "data" / "cpython_email").glob("msg_*.txt"))]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(parsed: ParsedMessage, raw: bytes) -> None:
    assert parsed.size == len(raw)
    # parse-error only comes from an exception inside the parser: a bug, not bad input.
    assert "parse-error" not in parsed.defects, parsed.unscannable
    assert parsed.texts
    assert parsed.texts[0].source is TextSource.SUBJECT
    for item in (*parsed.links, *parsed.contacts, *parsed.order_ids):
        span = item.span
        if span.text_index == -1:
            assert span.start == span.end == 0
            continue
        text = parsed.texts[span.text_index].text
        assert 0 <= span.start < span.end <= len(text)
    for attachment in parsed.attachments:
        if attachment.text_index is not None:
            assert parsed.texts[attachment.text_index].source is TextSource.ATTACHMENT


def _parse(raw: bytes) -> ParsedMessage:
    started = time.monotonic()
    parsed = parse_message(raw, LIMITS)
    assert time.monotonic() - started < 10
    _check(parsed, raw)
    return parsed


@SETTINGS
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Any byte string parses to a message whose spans lie inside their texts."""
    _parse(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real CPython test message with bytes flipped, cut, duplicated or inserted."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not raw:
            break
        where = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if action == "flip":
            raw[where] = draw(st.integers(0, 255))
        elif action == "cut":
            del raw[where : where + draw(st.integers(1, 200))]
        elif action == "insert":
            raw[where:where] = draw(
                st.sampled_from([b"\r\n--", b"=?utf-8?b?", b"\x00", b"Content-Type: multipart/mixed; boundary=x\r\n"])
            )
        else:
            raw[where:where] = raw[where : where + draw(st.integers(1, 300))]
    return bytes(raw)


@SETTINGS
@given(mutated())
def test_mutated_real_messages_never_raise(raw: bytes) -> None:
    """Mutations of real messages never raise and keep every span inside its text."""
    _parse(raw)


@SETTINGS
@given(st.text(max_size=2000))
def test_text_scanners_spans_inside(text: str) -> None:
    """Links, contacts and quote splits found in any text point inside it."""
    for link in find_links(text):
        assert 0 <= link.start < link.end <= len(text)
    for contact in find_contacts(text, []):
        assert 0 <= contact.start < contact.end <= len(text)
    split = find_trailing_quote(text)
    assert split.start is None or 0 <= split.start <= len(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("<>/ =\"'abdivpspanstyle:none;#fff0123\n")), max_size=1500))
def test_html_any_markup(markup: str) -> None:
    """Any tag soup renders without raising and anchors point inside their channel."""
    rendered = html_to_text(markup, 100_000)
    for anchor in rendered.anchors:
        channel = rendered.hidden if anchor.hidden else rendered.visible
        assert 0 <= anchor.start <= anchor.end <= len(channel)
    for start, end in rendered.quote_regions:
        assert 0 <= start <= end <= len(rendered.visible)


def _whole_message_envelope(raw: bytes) -> object:
    """header_envelope as it was before it cut the header block off: the parser fed everything."""
    import email.parser
    import email.policy

    from gateway.mime.walk import _envelope

    defects: list[str] = []
    envelope = _envelope(email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw), defects)
    return envelope, defects


HEADER_PIECES = st.sampled_from(
    [b"Subject: hi", b"From: a@b.example", b"To: c@d.example", b" folded", b"\tmore", b"no colon", b"", b"X: \xff"]
)
ENDINGS = st.sampled_from([b"\r\n", b"\n", b"\r"])


@given(st.lists(st.tuples(HEADER_PIECES, ENDINGS), max_size=8), st.binary(max_size=60))
@SETTINGS
def test_header_envelope_reads_only_the_header_block_with_the_same_result(
    lines: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Cutting the input at the first empty line changes nothing the header parse returns."""
    from gateway.mime.walk import header_envelope

    raw = b"".join(text + ending for text, ending in lines) + body
    defects: list[str] = []
    assert (header_envelope(raw, defects), defects) == _whole_message_envelope(raw)


def test_header_envelope_same_result_on_the_seed_messages() -> None:
    """Real messages (CPython's email test set): same envelope with and without the cut."""
    from gateway.mime.walk import header_envelope

    for raw in SEEDS:
        defects: list[str] = []
        assert (header_envelope(raw, defects), defects) == _whole_message_envelope(raw)
