"""A safe rendering of a quarantined message's HTML for the preview frame.

Allow-list, not block-list: the HTML is parsed with a real HTML5 parser
(selectolax/lexbor, as :mod:`gateway.mime.html` does) and *rebuilt* from
scratch, so only what this module writes reaches the browser:

- a fixed set of formatting and structure tags, with no attributes at all
  (except numeric ``colspan``/``rowspan``/``start``) — so no event handlers,
  no ``style`` (no CSS tricks), no ``class``/``id``, no URLs;
- scripts, styles, frames, objects, forms, media, SVG and MathML dropped with
  their content;
- images replaced by a text placeholder naming the source (nothing is
  fetched); links rendered as text followed by their real target, never as
  something clickable;
- every other tag unwrapped (its text kept).

Text hidden by CSS is therefore shown, which is what a reviewer needs; the
message view marks which text was hidden. The result is additionally served
in a sandboxed frame under its own CSP (see :mod:`gateway.web.messages`).
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from html import escape
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

#: Tags rebuilt as themselves (without attributes).
KEEP_TAGS = frozenset(
    [
        "p",
        "br",
        "div",
        "span",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "s",
        "strike",
        "small",
        "big",
        "sub",
        "sup",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "code",
        "tt",
        "kbd",
        "samp",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "hr",
        "center",
        "abbr",
        "q",
        "cite",
        "address",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "aside",
        "figure",
        "figcaption",
        "mark",
        "del",
        "ins",
    ]
)
#: Tags dropped together with everything inside them.
DROP_TAGS = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "head",
        "title",
        "meta",
        "link",
        "base",
        "svg",
        "math",
        "audio",
        "video",
        "canvas",
        "source",
        "track",
        "picture",
        "input",
        "button",
        "select",
        "option",
        "optgroup",
        "textarea",
        "param",
        "map",
        "portal",
        "dialog",
        "datalist",
        "output",
        "progress",
        "meter",
    ]
)
_VOID = frozenset({"br", "hr"})
_NUMERIC_ATTRS = {"td": ("colspan", "rowspan"), "th": ("colspan", "rowspan"), "ol": ("start",)}
_MAX_ATTR = 300  # longest URL or alt text shown in a placeholder

#: Largest HTML part rendered; beyond it the preview says it was cut.
MAX_HTML_CHARS = 2_000_000


def _short(value: object) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= _MAX_ATTR else text[: _MAX_ATTR - 1] + "…"


def _open(tag: str, attrs: dict[str, Any]) -> str:
    kept = []
    for name in _NUMERIC_ATTRS.get(tag, ()):
        value = str(attrs.get(name) or "").strip()
        if value.isdigit() and len(value) <= 3:
            kept.append(f' {name}="{value}"')
    return f"<{tag}{''.join(kept)}>"


def _image(attrs: dict[str, Any]) -> str:
    src = _short(attrs.get("src"))
    alt = _short(attrs.get("alt"))
    label = "image"
    if alt:
        label += f" “{alt}”"
    where = f": {src}" if src else ""
    shown = f"[{escape(label)}{escape(where)} — not loaded]"
    return f'<span class="image" role="img" aria-label="{escape(label)}">{shown}</span>'


def sanitise_html(markup: str) -> str:
    """The body of ``markup`` rebuilt from allowed tags and escaped text only."""
    tree = LexborHTMLParser(markup[:MAX_HTML_CHARS])
    start = tree.body or tree.root
    if start is None:
        return ""
    out: list[str] = []
    # Explicit stack (hostile nesting must not exhaust Python's): nodes to enter, or closing strings.
    stack: list[LexborNode | str] = [child for child in reversed(list(start.iter(include_text=True)))]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        tag = (item.tag or "").lower()
        if tag == "-text":
            out.append(escape(item.text_content or "", quote=False))
            continue
        if tag.startswith(("_", "!")) or tag in DROP_TAGS:
            continue  # comments, doctype, and active or invisible content
        attrs = dict(item.attributes)
        children = list(item.iter(include_text=True))
        if tag == "img":
            out.append(_image(attrs))
            continue
        if tag in ("a", "area"):
            href = _short(attrs.get("href"))
            out.append('<span class="link">')
            closing = "</span>"
            if href:
                closing += f'<span class="target"> [→ {escape(href)}]</span>'
            stack.append(closing)
        elif tag in KEEP_TAGS:
            out.append(_open(tag, attrs))
            if tag in _VOID:
                continue
            stack.append(f"</{tag}>")
        stack.extend(reversed(children))
    return "".join(out)


def html_body(raw: bytes) -> str | None:
    """The first ``text/html`` body part of ``raw``, decoded (``None`` when there is none)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() != "text/html" or part.get_content_disposition() == "attachment":
            continue
        assert isinstance(part, EmailMessage)
        try:
            content = part.get_content()
        except (LookupError, ValueError, AssertionError):  # unknown charset or broken encoding: best effort
            payload = part.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        return str(content)
    return None


PREVIEW_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:12px;color:#111;background:#fff;overflow-wrap:anywhere}"
    ".image{display:inline-block;border:1px dashed #888;background:#f4f4f4;color:#444;font-size:12px;padding:2px 4px}"
    ".link{text-decoration:underline;color:#0b5cad}.target{color:#555;font-size:12px;font-family:monospace}"
    "table{border-collapse:collapse}td,th{border:1px dotted #ccc;padding:2px 4px}"
    ".note{color:#555;font-size:12px;border-bottom:1px solid #ddd;padding-bottom:6px;margin-bottom:10px}"
)


def preview_document(body: str, nonce: str) -> str:
    """A complete HTML document around sanitised ``body``; the only style is ours, allowed by ``nonce``."""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Preview</title>'
        f'<style nonce="{nonce}">{PREVIEW_STYLE}</style></head><body>'
        '<p class="note">Sanitised preview: no scripts, no styles of the message, images not loaded, '
        "links shown with their real target. Text the message hid with CSS is shown.</p>"
        f"{body}</body></html>"
    )
