"""The MIME walk: from raw bytes to texts with provenance and attachment jobs.

Uses the stdlib ``email`` package with ``policy.default`` (RFC 2047/2231
headers, every transfer encoding), bounded: header values are clipped at
parse time (the stdlib's structured-header parser is super-linear on huge
hostile values), the walk is iterative, and part count and nesting depth
are limited by :class:`~gateway.config.ParserConfig`. Heavy attachment work
is not done here: attachments become :class:`AttachmentJob` items that
:mod:`gateway.mime.parse` runs inline or in the process pool.
"""

from __future__ import annotations

import contextlib
import email
import email.parser
import email.policy
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from gateway.config import ParserConfig
from gateway.mime.charsets import decode_bytes, fix_surrogates
from gateway.mime.contacts import find_messengers, parse_phone, valid_address
from gateway.mime.headers import addresses, first_address, header_text, message_ids, reply_evidence
from gateway.mime.html import HtmlText, html_to_text
from gateway.mime.links import parse_url
from gateway.mime.quotes import find_trailing_quote
from gateway.mime.types import Contact, ContactKind, Image, Link, Span, TextPart, TextSource, Unscannable

MAX_HEADER_VALUE = 16_384  # characters kept of one raw header value (RFC 5322 lines are <= 998)
# The stdlib's MIME parameter and address parsers are quadratic; real Content-* and
# address headers are far shorter than these.
MAX_MIME_HEADER_VALUE = 2_048
MAX_ADDRESS_HEADER_VALUE = 8_192
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender", "resent-to", "resent-cc", "resent-from"})


def header_limit(name: str) -> int:
    """How many characters of header ``name``'s raw value are kept."""
    lowered = name.lower()
    if lowered.startswith("content-"):
        return MAX_MIME_HEADER_VALUE
    if lowered in _ADDRESS_HEADERS:
        return MAX_ADDRESS_HEADER_VALUE
    return MAX_HEADER_VALUE


BODY_TYPES = frozenset({"text/plain", "text/html"})


class _BoundedPolicy(email.policy.EmailPolicy):
    """``policy.default`` that clips each raw header value before anything parses it."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        limit = header_limit(name)
        if len(value) > limit:
            value = value[:limit]
        return name, value


POLICY = _BoundedPolicy()


@dataclass(frozen=True, slots=True)
class AttachmentJob:
    """A part to analyse (true type, text, flags), runnable in a worker process."""

    data: bytes
    filename: str
    declared_type: str
    part: str
    depth: int
    inline: bool


@dataclass(frozen=True, slots=True)
class Envelope:
    """Top-level header facts."""

    subject: str = ""
    from_addr: str = ""
    to_addrs: tuple[str, ...] = ()
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    date: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    reply_evidence: str = ""


@dataclass(slots=True)
class Walked:
    """What the walk found; texts[0] is the subject."""

    envelope: Envelope = field(default_factory=Envelope)
    texts: list[TextPart] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    jobs: list[AttachmentJob] = field(default_factory=list)
    nested: list[tuple[str, str, int, int]] = field(default_factory=list)  # (part, filename, size, depth)
    defects: list[str] = field(default_factory=list)
    unscannable: list[Unscannable] = field(default_factory=list)
    part_count: int = 0
    text_chars: int = 0
    has_plain: bool = False
    has_html: bool = False


def _defect_name(defect: Any) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _add_defect(walked: Walked, defect: str) -> None:
    if defect not in walked.defects and len(walked.defects) < 200:
        walked.defects.append(defect)


#: The end of the first empty line, where a header block necessarily ends.
_END_OF_HEADERS = re.compile(rb"\n\r?\n")


def header_envelope(raw: bytes, defects: list[str]) -> Envelope:
    """The top-level header facts alone, without walking the MIME tree."""
    # The parser stops at the first empty line anyway; handing it only the bytes up
    # to there spares decoding and splitting the whole body.
    end = _END_OF_HEADERS.search(raw)
    block = raw[: end.end()] if end else raw
    header_block = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    return _envelope(header_block, defects)


def _envelope(msg: Message, defects: list[str]) -> Envelope:
    subject = header_text(msg, "Subject", defects)
    in_reply_to = header_text(msg, "In-Reply-To", defects)
    references = header_text(msg, "References", defects)
    to_value = ", ".join(x for x in (header_text(msg, "To", defects), header_text(msg, "Cc", defects)) if x)
    headers: list[tuple[str, str]] = []
    for index, (name, _raw) in enumerate(msg.raw_items()):
        if index >= 500:
            defects.append("too-many-headers")
            break
        headers.append((name, display_value(_raw)))
    return Envelope(
        subject=re.sub(r"[\r\n]+", " ", subject),
        from_addr=first_address(header_text(msg, "From", defects)),
        to_addrs=addresses(to_value),
        message_id=header_text(msg, "Message-ID", defects).strip(),
        in_reply_to=in_reply_to.strip(),
        references=message_ids(references),
        date=header_text(msg, "Date", defects).strip(),
        headers=tuple(headers),
        reply_evidence=reply_evidence(subject, in_reply_to, references),
    )


def display_value(raw_value: str) -> str:
    """A header value for display: unfolded, RFC 2047 words decoded, never raising.

    Deliberately not the structured ``policy.default`` parse: building header
    objects for every Received line costs more than the rest of a small message.
    """
    value = re.sub(r"\r?\n[ \t]+", " ", raw_value).strip()
    if "=?" in value:
        with contextlib.suppress(Exception):  # malformed encoded words stay as written
            value = str(make_header(decode_header(value)))
    return fix_surrogates(value)[0][:MAX_HEADER_VALUE]


def walk(raw: bytes, limits: ParserConfig, max_multipart_depth: int = 50) -> Walked:
    """Walk ``raw`` (see the module docstring). Raises only on internal bugs."""
    walked = Walked()
    raw = _cap_boundaries(raw, limits, walked)
    try:
        msg = email.message_from_bytes(raw, policy=POLICY)
    except Exception:
        # The stdlib's structured-header parser has crash bugs on odd parameters
        # (IndexError in get_parameter on "charset*\r\n--..."); compat32 keeps
        # headers as strings and parses the same MIME tree without them.
        _add_defect(walked, "header-parser-failed")
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    envelope = _envelope(msg, walked.defects)
    walked.envelope = envelope
    walked.texts.append(TextPart(envelope.subject, TextSource.SUBJECT))
    # (message part, path, message depth, multipart depth)
    stack: list[tuple[Message, str, int, int]] = [(msg, "", 0, 0)]
    while stack:
        part, path, depth, nesting = stack.pop()
        walked.part_count += 1
        if walked.part_count > limits.max_parts:
            too_many = Unscannable("limit-exceeded", f"more than {limits.max_parts} MIME parts", "message")
            if too_many not in walked.unscannable:
                walked.unscannable.append(too_many)
            break
        for defect in getattr(part, "defects", ()):
            _add_defect(walked, _defect_name(defect))
        for name, value in part.raw_items():
            if len(value) >= header_limit(name):
                _add_defect(walked, f"header-truncated:{name.lower()[:40]}")
        try:
            ctype = part.get_content_type()
        except Exception:
            ctype = "application/octet-stream"
            _add_defect(walked, "content-type-unparsable")
        if part.is_multipart() and ctype.startswith("multipart/"):
            if nesting >= max_multipart_depth:
                walked.unscannable.append(
                    Unscannable("limit-exceeded", f"multipart nesting over {max_multipart_depth}", f"part {path}")
                )
                continue
            children = part.get_payload()
            if not isinstance(children, list):
                continue
            prefix = f"{path}." if path else ""
            for i in range(len(children), 0, -1):
                child = children[i - 1]
                if isinstance(child, Message):
                    stack.append((child, f"{prefix}{i}", depth, nesting + 1))
            continue
        part_path = path or "1"
        if ctype == "message/rfc822" or (part.is_multipart() and ctype.startswith("message/")):
            _nested_message(walked, part, part_path, depth, nesting, limits, stack)
            continue
        _leaf(walked, part, part_path, ctype, depth, limits)
    if walked.has_html and not walked.has_plain:
        _add_defect(walked, "html-only")
    return walked


_BOUNDARY_LINE = re.compile(rb"(?m)^--")


def _cap_boundaries(raw: bytes, limits: ParserConfig, walked: Walked) -> bytes:
    """Cut a message with far more boundary lines than ``max_parts`` allows.

    The stdlib parses every part's Content-Type several times before we see
    the tree, so a 10,000-part message would cost seconds before the part
    limit could act. Every part starts with a line beginning ``--``; past
    ``2 * max_parts`` such lines (room for closing delimiters) the rest is cut
    and the message marked ``limit-exceeded``.
    """
    allowed = 2 * limits.max_parts + 2
    if raw.count(b"\n--") < allowed:  # the common case, counted in C
        return raw
    for count, match in enumerate(_BOUNDARY_LINE.finditer(raw), start=1):
        if count > allowed:
            walked.unscannable.append(
                Unscannable("limit-exceeded", f"more than {limits.max_parts} MIME parts", "message")
            )
            return raw[: match.start()]
    return raw


def _nested_message(
    walked: Walked,
    part: Message,
    path: str,
    depth: int,
    nesting: int,
    limits: ParserConfig,
    stack: list[tuple[Message, str, int, int]],
) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    filename = _filename(part, walked)
    size = 0
    if isinstance(inner, Message):
        with contextlib.suppress(Exception):  # re-serialising a broken message can fail; size is informative
            size = len(inner.as_bytes())
    walked.nested.append((path, filename, size, depth))
    if filename:
        walked.texts.append(TextPart(filename, TextSource.ATTACHMENT_NAME, path, filename=filename, depth=depth))
    if not isinstance(inner, Message):
        return
    if depth + 1 > limits.max_depth:
        walked.unscannable.append(
            Unscannable("limit-exceeded", f"message/rfc822 nesting over {limits.max_depth}", f"part {path}")
        )
        return
    subject = header_text(inner, "Subject", walked.defects)
    if subject:
        walked.texts.append(TextPart(subject, TextSource.SUBJECT, path, depth=depth + 1))
    stack.append((inner, f"{path}", depth + 1, nesting + 1))


@dataclass(frozen=True, slots=True)
class _PartHeaders:
    """Content-Type and Content-Disposition parameters of one part, parsed once.

    ``get_filename``, ``get_param`` and ``get_content_disposition`` each parse the
    header again; for a small message those parses cost more than the rest.
    ``None`` means the header is absent or not a structured (``policy.default``)
    header, and the stdlib accessors are used instead.
    """

    content: dict[str, str] | None
    disposition: dict[str, str] | None
    disposition_type: str | None


def _params(header: object) -> dict[str, str] | None:
    params = getattr(header, "params", None)
    if params is None:
        return None
    return {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}


def _part_headers(part: Message) -> _PartHeaders:
    disposition = part.get("content-disposition")
    kind = getattr(disposition, "content_disposition", None)
    return _PartHeaders(
        _params(part.get("content-type")), _params(disposition), kind.lower() if isinstance(kind, str) else None
    )


def _clean_name(name: object) -> str:
    if isinstance(name, tuple):  # an RFC 2231 triple the stdlib could not collapse
        name = email.utils.collapse_rfc2231_value(name)
    text, _ = fix_surrogates(str(name))
    return re.sub(r"[\x00-\x1f]", "", text).strip()[:255]


def _filename(part: Message, walked: Walked, headers: _PartHeaders | None = None) -> str:
    try:
        headers = headers or _part_headers(part)
        if headers.disposition is not None or headers.content is not None:
            name: object = (headers.disposition or {}).get("filename") or (headers.content or {}).get("name") or ""
        else:
            name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except Exception:
        _add_defect(walked, "filename-unparsable")
        return ""
    return _clean_name(name)


def _leaf(walked: Walked, part: Message, path: str, ctype: str, depth: int, limits: ParserConfig) -> None:
    try:
        headers = _part_headers(part)
    except Exception:
        headers = _PartHeaders(None, None, None)
        _add_defect(walked, "content-headers-unparsable")
    filename = _filename(part, walked, headers)
    try:
        disposition = headers.disposition_type or (part.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:
        data = b""
        _add_defect(walked, "payload-undecodable")
    if not isinstance(data, bytes):
        data = b""
    if ctype in BODY_TYPES and disposition != "attachment" and not filename:
        try:
            charset = headers.content.get("charset") if headers.content is not None else part.get_param("charset")
        except Exception:  # a Content-Type the stdlib cannot take apart
            charset = None
            _add_defect(walked, "charset-unparsable")
        decoded = decode_bytes(data, str(charset) if isinstance(charset, str) else None)
        for defect in decoded.defects:
            _add_defect(walked, defect)
        if ctype == "text/html":
            walked.has_html = True
            _html_body(walked, decoded.text, path, depth, limits)
        else:
            walked.has_plain = True
            _plain_body(walked, decoded.text, path, depth, limits)
        return
    if filename:
        walked.texts.append(TextPart(filename, TextSource.ATTACHMENT_NAME, path, filename=filename, depth=depth))
    walked.jobs.append(AttachmentJob(data, filename, ctype, path, depth, disposition == "inline"))


def _budget(walked: Walked, text: str, limits: ParserConfig, where: str) -> str:
    room = limits.max_text_chars - walked.text_chars
    if len(text) > room:
        walked.unscannable.append(Unscannable("limit-exceeded", f"text over {limits.max_text_chars} characters", where))
        text = text[: max(room, 0)]
    walked.text_chars += len(text)
    return text


def _split_quote(walked: Walked, text: str, regions: tuple[tuple[int, int], ...]) -> int:
    """Offset where the trailing buyer quote starts, ``len(text)`` when none is accepted."""
    split = find_trailing_quote(text, regions)
    for defect in split.defects:
        _add_defect(walked, defect)
    if split.start is None:
        return len(text)
    if not walked.envelope.reply_evidence:
        # A quote in a message that answers nothing is the seller's own text.
        _add_defect(walked, "quote-in-non-reply")
        return len(text)
    return split.start


def _plain_body(walked: Walked, text: str, path: str, depth: int, limits: ParserConfig) -> None:
    text = _budget(walked, text.replace("\r\n", "\n"), limits, f"part {path}")
    cut = _split_quote(walked, text, ())
    walked.texts.append(TextPart(text[:cut], TextSource.PLAIN, path, depth=depth))
    if cut < len(text):
        walked.texts.append(TextPart(text[cut:], TextSource.PLAIN, path, quoted=True, depth=depth))


def _html_body(walked: Walked, markup: str, path: str, depth: int, limits: ParserConfig) -> None:
    rendered: HtmlText = html_to_text(markup[: limits.max_text_chars * 4], limits.max_text_chars)
    visible = _budget(walked, rendered.visible, limits, f"part {path}")
    hidden = _budget(walked, rendered.hidden, limits, f"part {path} (hidden)")
    cut = _split_quote(walked, visible, rendered.quote_regions)
    own_index = len(walked.texts)
    walked.texts.append(TextPart(visible[:cut], TextSource.HTML, path, depth=depth))
    quote_index = hidden_index = -1
    if cut < len(visible):
        quote_index = len(walked.texts)
        walked.texts.append(TextPart(visible[cut:], TextSource.HTML, path, quoted=True, depth=depth))
    if hidden.strip():
        hidden_index = len(walked.texts)
        walked.texts.append(TextPart(hidden, TextSource.HTML, path, hidden=True, depth=depth))
        for reason in rendered.hidden_reasons:
            _add_defect(walked, f"hidden-text:{reason}")
    for anchor in rendered.anchors:
        if anchor.hidden:
            span = Span(hidden_index, anchor.start, anchor.end) if hidden_index >= 0 else Span()
            if anchor.end > len(hidden):
                span = Span()
        elif anchor.start >= cut and quote_index >= 0:
            span = Span(quote_index, anchor.start - cut, anchor.end - cut)
        elif anchor.end <= cut:
            span = Span(own_index, anchor.start, anchor.end)
        else:
            span = Span()
        if span.start == span.end:
            span = Span()
        _href(walked, anchor.href, anchor.text, span)
    for image in rendered.images:
        src = image.src
        remote = bool(re.match(r"(?:https?:)?//", src, re.I))
        walked.images.append(Image(src, remote, image.width, image.height, image.alt, image.hidden, path))


def _href(walked: Walked, href: str, anchor: str, span: Span) -> None:
    if not href or href.startswith("#"):
        return
    url, scheme, host = parse_url(href)
    if scheme == "mailto":
        address = url[7:].split("?", 1)[0]
        value = valid_address(address)
        if value:
            walked.contacts.append(Contact(ContactKind.EMAIL, value, address, span))
    elif scheme in ("tel", "callto", "sms"):
        number = url.split(":", 1)[1]
        value = parse_phone(number, labelled=True, cyrillic=False)
        if value:
            walked.contacts.append(Contact(ContactKind.PHONE, value, number, span))
    for messenger in find_messengers(url, []):
        walked.contacts.append(Contact(ContactKind.MESSENGER, messenger.value, href, span))
    walked.links.append(Link(url, scheme, host, anchor, span, from_href=True))
