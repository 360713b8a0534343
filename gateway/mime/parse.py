"""Raw bytes to :class:`ParsedMessage`: the parser the pipeline calls.

:func:`parse_message` is synchronous and pure and never raises: a bug inside
becomes an ``Unscannable("parse-error")`` and a defect. :class:`MessageParser`
implements the pipeline's ``Parser`` protocol: the MIME walk and text scanning
run in a thread, attachment analysis in the process pool
(:mod:`gateway.mime.pool`), so the event loop never does heavy work and one
hostile attachment cannot stall other sessions.

The steps, shared by both paths: :func:`~gateway.mime.walk.walk` ->
:func:`~gateway.mime.attachments.analyse` per attachment -> :func:`assemble`
(attachments and their texts added, then links, contacts and order ids found in
every text with spans pointing back into it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from gateway.config import ParserConfig
from gateway.mime.attachments import AttachmentResult, analyse, extension_of
from gateway.mime.contacts import find_contacts, find_emails
from gateway.mime.links import find_links
from gateway.mime.orders import find_orders
from gateway.mime.pool import AttachmentPool
from gateway.mime.types import (
    Attachment,
    AttachmentFlag,
    Contact,
    Link,
    OrderId,
    ParsedMessage,
    Span,
    TextPart,
    TextSource,
    Unscannable,
)
from gateway.mime.walk import AttachmentJob, Walked, header_envelope, walk

log = structlog.get_logger(__name__)


def parse_message(raw: bytes, limits: ParserConfig) -> ParsedMessage:
    """Parse ``raw`` completely in this process (no pool). Never raises."""
    try:
        walked = walk(raw, limits)
        results = [analyse(job, limits) for job in walked.jobs]
        return assemble(walked, results, len(raw))
    except RecursionError:
        return failed(raw, "MIME structure nested too deeply")
    except MemoryError:
        return failed(raw, "message needed too much memory", reason="limit-exceeded")
    except Exception as exc:  # the contract: a bug is a parse-error verdict, never an exception
        log.warning("message_parse_failed", error=type(exc).__name__)
        return failed(raw, f"internal error: {type(exc).__name__}")


def parse_headers(raw: bytes) -> ParsedMessage:
    """Only the top-level headers (subject, addresses, threading), for a policy that reads no content.

    Cheap enough to run on the event loop (one header block, no MIME walk, no
    text scans). Never raises.
    """
    defects: list[str] = []
    try:
        envelope = header_envelope(raw, defects)
    except Exception as exc:  # the contract: never raise
        log.warning("message_parse_failed", error=type(exc).__name__)
        return failed(raw, f"internal error: {type(exc).__name__}")
    return ParsedMessage(
        subject=envelope.subject,
        from_addr=envelope.from_addr,
        to_addrs=envelope.to_addrs,
        message_id=envelope.message_id,
        in_reply_to=envelope.in_reply_to,
        references=envelope.references,
        date=envelope.date,
        headers=envelope.headers,
        is_reply=bool(envelope.reply_evidence),
        reply_evidence=envelope.reply_evidence,
        texts=(TextPart(envelope.subject, TextSource.SUBJECT),),
        defects=tuple(defects),
        size=len(raw),
    )


def failed(raw: bytes, detail: str, reason: str = "parse-error") -> ParsedMessage:
    """The result for a message the parser could not take apart."""
    return ParsedMessage(
        texts=(TextPart("", TextSource.SUBJECT),),
        defects=("parse-error",),
        unscannable=(Unscannable(reason, detail, "message"),),
        size=len(raw),
    )


def _scan(texts: Sequence[TextPart]) -> tuple[list[Link], list[Contact], list[OrderId]]:
    links: list[Link] = []
    contacts: list[Contact] = []
    orders: list[OrderId] = []
    for index, part in enumerate(texts):
        text = part.text
        if not text.strip():
            continue
        found_orders = find_orders(text)
        orders.extend(OrderId(o.marketplace, o.value, Span(index, o.start, o.end)) for o in found_orders)
        emails = find_emails(text)
        found_links = find_links(text, [(e.start, e.end) for e in emails])
        links.extend(
            Link(f.url, f.scheme, f.host, text[f.start : f.end], Span(index, f.start, f.end), False, f.obfuscated)
            for f in found_links
        )
        exclude = [(o.start, o.end) for o in found_orders] + [(f.start, f.end) for f in found_links if f.scheme]
        contacts.extend(
            Contact(c.kind, c.value, text[c.start : c.end], Span(index, c.start, c.end), c.obfuscated)
            for c in find_contacts(text, exclude, emails)
        )
    return links, contacts, orders


def assemble(walked: Walked, results: Sequence[AttachmentResult], size: int) -> ParsedMessage:
    """Combine the walk and the attachment analyses into the final message."""
    texts = list(walked.texts)
    unscannable = list(walked.unscannable)
    attachments: list[Attachment] = []
    for path, filename, nested_size, depth in walked.nested:
        attachments.append(
            Attachment(
                filename,
                extension_of(filename),
                "message/rfc822",
                "message/rfc822",
                nested_size,
                path,
                flags=frozenset({AttachmentFlag.NESTED_MESSAGE}),
                depth=depth,
            )
        )
    for job, result in zip(walked.jobs, results, strict=True):
        text_index = None
        if result.text.strip():
            text_index = len(texts)
            texts.append(
                TextPart(result.text, TextSource.ATTACHMENT, job.part, filename=job.filename or None, depth=job.depth)
            )
        if result.unscannable is not None:
            reason, detail = result.unscannable
            unscannable.append(Unscannable(reason, detail, f"attachment {job.filename or job.part}"))
        attachments.append(
            Attachment(
                job.filename,
                extension_of(job.filename),
                job.declared_type,
                result.detected_type,
                result.size,
                job.part,
                result.sha256,
                result.flags,
                text_index,
                result.entries,
                result.unscannable[0] if result.unscannable else None,
                job.depth,
            )
        )
    links, contacts, orders = _scan(texts)
    attachments.sort(key=lambda a: [int(x) if x.isdigit() else 0 for x in a.part.split(".")])
    env = walked.envelope
    return ParsedMessage(
        subject=env.subject,
        from_addr=env.from_addr,
        to_addrs=env.to_addrs,
        message_id=env.message_id,
        in_reply_to=env.in_reply_to,
        references=env.references,
        date=env.date,
        headers=env.headers,
        is_reply=bool(env.reply_evidence),
        reply_evidence=env.reply_evidence,
        texts=tuple(texts),
        links=tuple(walked.links + links),
        images=tuple(walked.images),
        contacts=tuple(walked.contacts + contacts),
        order_ids=tuple(orders),
        attachments=tuple(attachments),
        defects=tuple(walked.defects),
        unscannable=tuple(unscannable),
        size=size,
        part_count=walked.part_count,
    )


class MessageParser:
    """The pipeline's parser: walk in a thread, attachments in a process pool.

    ``limits.pool_workers == 0`` means no pool: everything runs in the thread
    (``gateway check`` and tests).
    """

    def __init__(self, limits: ParserConfig) -> None:
        self._limits = limits
        self._pool = AttachmentPool(limits) if limits.pool_workers > 0 else None

    async def parse(self, raw: bytes) -> ParsedMessage:
        """Parse ``raw`` without blocking the event loop. Never raises on input."""
        if self._pool is None:
            return await asyncio.to_thread(parse_message, raw, self._limits)
        try:
            walked = await asyncio.to_thread(walk, raw, self._limits)
        except Exception as exc:  # a walk bug is a parse-error verdict
            log.warning("message_parse_failed", error=type(exc).__name__)
            return failed(raw, f"internal error: {type(exc).__name__}")
        if walked.jobs:
            try:
                results = list(await asyncio.gather(*(self._pool.analyse(job) for job in walked.jobs)))
            except RuntimeError as exc:  # the pool was closed under us (shutdown)
                log.warning("message_parse_failed", error=type(exc).__name__)
                return failed(raw, "attachment pool closed")
            return await asyncio.to_thread(_assemble_safely, walked, results, raw)
        return await asyncio.to_thread(_inline, walked, raw, self._limits)

    def parse_headers(self, raw: bytes) -> ParsedMessage:
        """Only the top-level headers (see :func:`parse_headers`); synchronous and cheap."""
        return parse_headers(raw)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.close()


def _inline(walked: Walked, raw: bytes, limits: ParserConfig) -> ParsedMessage:
    try:
        return assemble(walked, [analyse(job, limits) for job in walked.jobs], len(raw))
    except Exception as exc:  # the contract: never raise
        log.warning("message_parse_failed", error=type(exc).__name__)
        return failed(raw, f"internal error: {type(exc).__name__}")


def _assemble_safely(walked: Walked, results: list[AttachmentResult], raw: bytes) -> ParsedMessage:
    try:
        return assemble(walked, results, len(raw))
    except Exception as exc:  # the contract: never raise
        log.warning("message_parse_failed", error=type(exc).__name__)
        return failed(raw, f"internal error: {type(exc).__name__}")


__all__ = ["AttachmentJob", "MessageParser", "assemble", "failed", "parse_message"]
