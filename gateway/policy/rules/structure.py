"""Rules over what the parser found rather than words.

Links, contacts, images, attachments, unscannable parts and order ids.

Items found in the buyer's quoted text are the buyer's and never count.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.mime.normalize import normalize
from gateway.mime.types import AttachmentFlag, ContactKind, Link
from gateway.policy.context import EvalContext, ScannedText
from gateway.policy.lexicon import COMMON
from gateway.policy.rules.base import Hit, clip
from gateway.policy.spec import (
    AttachmentMatch,
    ContactMatch,
    LinkMatch,
    OrderLeakMatch,
    RuleSpec,
    TrackingMatch,
    UnscannableMatch,
)
from gateway.policy.tokens import tokenize

# Schemes that are not web links: contacts (mailto, tel) are the contact rules' business.
_NOT_WEB = frozenset({"mailto", "tel", "callto", "sms", "cid", "data"})


def _link_location(ctx: EvalContext, link: Link) -> str:
    return ctx.parsed.located(link.span) or "text/html"


def _host_matches(host: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatchcase

    host = host.lower().rstrip(".")
    return any(fnmatchcase(host, p.lower()) or host.endswith("." + p.lower()) for p in patterns)


@dataclass(frozen=True, slots=True)
class LinkRule:
    """Links off the profile's allowlist, plain http, or shortened."""

    spec: RuleSpec
    match: LinkMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Each offending link in the seller's text or markup."""
        hits = []
        for link in ctx.parsed.links:
            if link.scheme in _NOT_WEB or not ctx.is_sellers_span(link.span):
                continue
            allowed = bool(link.host) and ctx.profile.allows_link(link.host)
            check = self.match.check
            if (
                (check == "domain" and link.host and not allowed)
                or (check == "insecure" and link.scheme == "http")
                or (check == "shortener" and not allowed and _host_matches(link.host, self.match.shorteners))
            ):
                hits.append(Hit(clip(link.url), _link_location(ctx, link)))
        return hits


def _excused(ctx: EvalContext, text: ScannedText, offset: int, match: ContactMatch) -> bool:
    """Whether an excusing concept (a warranty line, a carrier) is near ``offset``."""
    if not match.excused_by:
        return False
    at = text.token_at(offset)
    lo, hi = at - match.excuse_window, at + match.excuse_window
    for language in [*text.hits]:
        for concept in match.excused_by:
            for first, last in text.concept_spans(language, concept):
                if last >= lo and first <= hi:
                    return True
    return False


@dataclass(frozen=True, slots=True)
class ContactRule:
    """E-mail addresses, phone numbers and messenger handles offered in the seller's text."""

    spec: RuleSpec
    match: ContactMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Each contact detail the seller offers, unless excused by its context."""
        hits = []
        by_index = {t.index: t for t in ctx.scanned}
        allowed_domains = ctx.profile.spec.contacts.allowed_email_domains
        for contact in ctx.parsed.contacts:
            if contact.kind.value not in self.match.kinds or not ctx.is_sellers_span(contact.span):
                continue
            if contact.kind is ContactKind.EMAIL:
                domain = contact.value.rpartition("@")[2]
                if _host_matches(domain, allowed_domains):
                    continue
            text = by_index.get(contact.span.text_index)
            if text is not None and _excused(ctx, text, contact.span.start, self.match):
                continue
            hits.append(Hit(clip(contact.raw), ctx.parsed.located(contact.span)))
        return hits


@dataclass(frozen=True, slots=True)
class TrackingRule:
    """Remote images, 1x1 pixels and unsubscribe links or headers."""

    spec: RuleSpec
    match: TrackingMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Each tracking element of the kind this rule checks."""
        check = self.match.check
        if check in ("remote_image", "pixel"):
            hits = []
            for image in ctx.parsed.images:
                if (check == "remote_image" and image.remote) or (check == "pixel" and image.is_pixel):
                    size = f" ({image.width}x{image.height})" if image.width is not None else ""
                    hits.append(
                        Hit(clip(f"<img src={image.src}>{size}"), "text/html (hidden)" if image.hidden else "text/html")
                    )
            return hits
        header = ctx.parsed.header("List-Unsubscribe")
        if header:
            return [Hit(clip(f"List-Unsubscribe: {header}"), "header")]
        for link in ctx.parsed.links:
            if not ctx.is_sellers_span(link.span):
                continue
            words = f"{link.anchor} {urlsplit(link.url).path.replace('/', ' ').replace('-', ' ')}"
            hits_by_language, _ = ctx.index.find(tokenize(normalize(words)))
            for concepts in hits_by_language.values():
                if any(c in concepts for c in self.match.unsubscribe):
                    return [Hit(clip(link.anchor or link.url), _link_location(ctx, link))]
        return []


_ACTIVE = frozenset(
    {
        AttachmentFlag.EXECUTABLE,
        AttachmentFlag.SCRIPT,
        AttachmentFlag.MACROS,
        AttachmentFlag.JAVASCRIPT,
        AttachmentFlag.EMBEDDED_OBJECT,
        AttachmentFlag.HTML,
        AttachmentFlag.ARCHIVE,
    }
)


@dataclass(frozen=True, slots=True)
class AttachmentRule:
    """Attachments the profile does not permit: type, size, a lying type, active content, encryption."""

    spec: RuleSpec
    match: AttachmentMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Each offending attachment."""
        policy = ctx.profile.spec.attachments
        hits = []
        for attachment in ctx.parsed.attachments:
            name = attachment.filename or "(unnamed)"
            location = f"attachment {name}"
            kind = attachment.detected_type or attachment.declared_type
            check = self.match.check
            if check == "type" and (policy.allowed_types or policy.allowed_extensions):
                type_ok = not policy.allowed_types or kind in policy.allowed_types
                ext_ok = not policy.allowed_extensions or attachment.extension in policy.allowed_extensions
                if not (type_ok and ext_ok):
                    hits.append(Hit(f"{name} ({kind or 'unknown type'})", location))
            elif check == "size" and policy.max_size is not None and attachment.size > policy.max_size:
                hits.append(Hit(f"{name} ({attachment.size} bytes > {policy.max_size})", location))
            elif check == "lying" and AttachmentFlag.TYPE_MISMATCH in attachment.flags:
                declared = attachment.declared_type or "?"
                hits.append(Hit(f"{name}: named .{attachment.extension}, declared {declared}, is {kind}", location))
            elif check == "active" and attachment.flags & _ACTIVE:
                flags = ", ".join(sorted(f.value for f in attachment.flags & _ACTIVE))
                hits.append(Hit(f"{name} ({flags})", location))
            elif check == "encrypted" and AttachmentFlag.ENCRYPTED in attachment.flags:
                hits.append(Hit(f"{name} (encrypted)", location))
        return hits


@dataclass(frozen=True, slots=True)
class UnscannableRule:
    """Content the parser could not inspect."""

    spec: RuleSpec
    match: UnscannableMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """One hit per uninspectable part."""
        return [Hit(clip(f"{u.reason}: {u.detail}"), u.location) for u in ctx.parsed.unscannable]


@dataclass(frozen=True, slots=True)
class OrderLeakRule:
    """Marketplace order ids sent to an address outside every marketplace relay."""

    spec: RuleSpec
    match: OrderLeakMatch

    def check(self, ctx: EvalContext) -> list[Hit]:
        """Each order id in the seller's text, when the recipient is not a marketplace relay."""
        if ctx.route.is_marketplace:
            return []
        return [
            Hit(f"{order.marketplace} order {order.value}", ctx.parsed.located(order.span))
            for order in ctx.parsed.order_ids
            if ctx.is_sellers_span(order.span)
        ]


def language_of(ctx: EvalContext) -> str | None:
    """The message's dominant language, for findings of structural rules."""
    languages = ctx.languages()
    return languages[0] if languages and languages[0] != COMMON else None
