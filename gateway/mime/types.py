"""The parse result: what the gateway understood of a message.

:func:`gateway.mime.parse.parse_message` turns raw bytes into a
:class:`ParsedMessage`; the policy engine reads nothing else. Every piece of
text keeps its provenance so evidence can say where it was found, and every
link, contact, order id or image points back into the text it came from
(``text_index`` into :attr:`ParsedMessage.texts`, with ``start``/``end``
character offsets into that text's ``text``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class TextSource(enum.StrEnum):
    """Where a piece of text came from."""

    SUBJECT = "subject"
    PLAIN = "text/plain"
    HTML = "text/html"
    ATTACHMENT_NAME = "attachment-name"
    ATTACHMENT = "attachment"


@dataclass(frozen=True, slots=True)
class TextPart:
    """One piece of text with its provenance.

    A body part is split into the seller's own text and, separately, a trailing
    quote of the buyer (``quoted=True``). HTML yields its visible text and,
    separately, text hidden by CSS (``hidden=True``).

    Attributes:
        text: the decoded text as the reader would see it (not normalised).
        source: which kind of part it came from.
        part: MIME path of the part (``"1.2"``; ``""`` for the subject).
        hidden: hidden by CSS in an HTML part.
        quoted: a trailing quote of the other party (the buyer), not the seller's text.
        filename: attachment file name for ``ATTACHMENT``/``ATTACHMENT_NAME`` texts.
        depth: nesting level of message/rfc822 parts it sits in (0 = the message itself).
    """

    text: str
    source: TextSource
    part: str = ""
    hidden: bool = False
    quoted: bool = False
    filename: str | None = None
    depth: int = 0

    @property
    def location(self) -> str:
        """Human-readable provenance used in findings (``text/html (hidden)``...)."""
        if self.source is TextSource.ATTACHMENT:
            base = f"attachment {self.filename or '(unnamed)'}"
        elif self.source is TextSource.ATTACHMENT_NAME:
            base = "attachment name"
        else:
            base = self.source.value
        marks = [m for m, on in (("hidden", self.hidden), ("quoted", self.quoted)) if on]
        if marks:
            base = f"{base} ({', '.join(marks)})"
        if self.depth:
            base = f"message/rfc822 > {base}"
        return base


@dataclass(frozen=True, slots=True)
class Span:
    """A place in :attr:`ParsedMessage.texts`: ``texts[text_index].text[start:end]``.

    ``text_index`` is ``-1`` when the item exists only in markup (an ``href``
    or ``src`` with no visible text), in which case ``start == end == 0``.
    """

    text_index: int = -1
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """A URL found in an ``href`` or in text (including obfuscated forms).

    Attributes:
        url: the URL as the gateway resolved it (``https://shop.example/x``;
            obfuscated forms are rewritten to a real URL).
        scheme: lowercase scheme (``http``, ``https``, ``mailto``...; ``""`` for a bare host).
        host: lowercase host, IDNA decoded to Unicode (``""`` when there is none).
        anchor: visible text of the link for HTML anchors, else the text as written.
        span: where the visible text/mention is.
        from_href: found in an HTML ``href`` (as opposed to plain text).
        obfuscated: written in an obfuscated form ("shop dot com", "shop[.]com").
    """

    url: str
    scheme: str
    host: str
    anchor: str = ""
    span: Span = field(default_factory=Span)
    from_href: bool = False
    obfuscated: bool = False


@dataclass(frozen=True, slots=True)
class Image:
    """An image referenced by an HTML part.

    Attributes:
        src: the ``src`` attribute as written.
        remote: loaded from the network (http/https/protocol-relative), not ``cid:``/``data:``.
        width, height: from attributes or inline CSS when given, else ``None``.
        hidden: inside hidden markup or styled invisible.
        part: MIME path of the HTML part.
    """

    src: str
    remote: bool
    width: int | None = None
    height: int | None = None
    alt: str = ""
    hidden: bool = False
    part: str = ""

    @property
    def is_pixel(self) -> bool:
        """A 1x1 (or smaller) image: the classic tracking pixel."""
        return self.width is not None and self.height is not None and self.width <= 1 and self.height <= 1


class ContactKind(enum.StrEnum):
    """Kinds of contact details found in text."""

    EMAIL = "email"
    PHONE = "phone"
    MESSENGER = "messenger"


@dataclass(frozen=True, slots=True)
class Contact:
    """An e-mail address, phone number or messenger handle found in text.

    Attributes:
        kind: what it is.
        value: normalised value: lowercase address, E.164 phone number, or
            ``service:handle`` for messengers (``whatsapp:+4915112345678``, ``telegram:@shop``).
        raw: the text as written.
        span: where it is.
        obfuscated: written in an obfuscated form ("info (at) shop (dot) de").
    """

    kind: ContactKind
    value: str
    raw: str
    span: Span = field(default_factory=Span)
    obfuscated: bool = False


@dataclass(frozen=True, slots=True)
class OrderId:
    """A marketplace order id found in text (``amazon``, ``ebay``, ``allegro``, ``bol``)."""

    marketplace: str
    value: str
    span: Span = field(default_factory=Span)


class AttachmentFlag(enum.StrEnum):
    """Facts about an attachment the policy may care about."""

    TYPE_MISMATCH = "type-mismatch"  # content type disagrees with extension or declared type
    EXECUTABLE = "executable"
    SCRIPT = "script"
    ARCHIVE = "archive"
    HTML = "html"
    MACROS = "macros"
    EMBEDDED_OBJECT = "embedded-object"
    JAVASCRIPT = "javascript"  # JavaScript inside a PDF
    ENCRYPTED = "encrypted"
    NESTED_MESSAGE = "nested-message"
    INLINE = "inline"


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One member of an archive attachment (names listed, never extracted to disk)."""

    name: str
    size: int
    compressed_size: int
    encrypted: bool = False
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Attachment:
    """A non-body MIME part (attachment or inline file) with what was learned of it.

    Attributes:
        filename: decoded file name (RFC 2231/2047), ``""`` when none.
        extension: lowercase extension without the dot (``"pdf"``), ``""`` when none.
        declared_type: the Content-Type the sender declared.
        detected_type: the type found from the content (magic bytes), ``""`` if unknown.
        size: decoded size in bytes.
        part: MIME path.
        sha256: hex digest of the decoded content.
        flags: see :class:`AttachmentFlag`.
        text_index: index of its extracted text in :attr:`ParsedMessage.texts`, if any.
        entries: archive members, when it is an archive.
        unscannable: reason the content could not be inspected, else ``None``.
        depth: message/rfc822 nesting level it sits in.
    """

    filename: str
    extension: str
    declared_type: str
    detected_type: str
    size: int
    part: str
    sha256: str = ""
    flags: frozenset[AttachmentFlag] = frozenset()
    text_index: int | None = None
    entries: tuple[ArchiveEntry, ...] = ()
    unscannable: str | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class Unscannable:
    """Something the parser could not inspect; the policy decides what that means.

    Attributes:
        reason: a short stable code: ``encrypted``, ``parse-error``, ``timeout``,
            ``limit-exceeded``, ``unsupported``.
        detail: human-readable detail (``zip entry count 20000 > 1000``).
        location: where (``attachment report.zip``, ``message``).
    """

    reason: str
    detail: str
    location: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the policy engine may look at for one message.

    Attributes:
        subject: decoded Subject header.
        from_addr: the address in the From header (lowercase), ``""`` if none or unparsable.
        to_addrs: addresses in To and Cc.
        message_id, in_reply_to, references: threading headers as written.
        headers: all top-level headers, decoded, in order (name as written).
        is_reply: the message answers a thread (In-Reply-To/References or a reply
            prefix in the subject), as opposed to a proactive message.
        reply_evidence: why it was judged a reply (``in-reply-to``, ``subject:AW``), or ``""``.
        texts: every text with provenance; the subject is always ``texts[0]``.
        links, images, contacts, order_ids, attachments: what was found.
        defects: parser defects and anomalies, as short strings.
        unscannable: what could not be inspected.
        size: raw size in bytes.
        part_count: number of MIME parts walked.
    """

    subject: str = ""
    from_addr: str = ""
    to_addrs: tuple[str, ...] = ()
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    date: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    is_reply: bool = False
    reply_evidence: str = ""
    texts: tuple[TextPart, ...] = ()
    links: tuple[Link, ...] = ()
    images: tuple[Image, ...] = ()
    contacts: tuple[Contact, ...] = ()
    order_ids: tuple[OrderId, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    unscannable: tuple[Unscannable, ...] = ()
    size: int = 0
    part_count: int = 0

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def located(self, span: Span) -> str:
        """The location string for a span (``""`` for markup-only items)."""
        if 0 <= span.text_index < len(self.texts):
            return self.texts[span.text_index].location
        return ""

    def quoted_text(self, span: Span) -> str:
        """The original text a span covers (``""`` for markup-only items)."""
        if 0 <= span.text_index < len(self.texts):
            return self.texts[span.text_index].text[span.start : span.end]
        return ""
