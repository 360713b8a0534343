"""HTML to text as the buyer would see it, plus what is hidden from them.

Parsed with selectolax's lexbor engine (a real HTML5 parser) and walked with
an explicit stack, so hostile nesting cannot exhaust the Python stack. The
walk yields two channels: visible text and text hidden by CSS (see
:mod:`gateway.mime.css`). Block elements and ``<br>`` become line breaks so
sentences stay apart. Anchors and images are recorded with offsets into the
channel they sit in, and quote containers (``blockquote type=cite``, Gmail,
Yahoo and Outlook reply markers) as regions of the visible text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from gateway.mime.css import Colour, StyleSheet, declarations, hides, length_px, parse_colour, similar

BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
        "caption",
    ]
)
SKIP_TAGS = frozenset(
    [
        "script",
        "style",
        "head",
        "title",
        "template",
        "meta",
        "link",
        "noembed",
        "iframe",
        "object",
        "embed",
        "svg",
        "math",
    ]
)
_SPACE = re.compile(r"[ \t\r\n\f]+")
_URL_IN_CSS = re.compile(r"url\(\s*['\"]?([^'\")\s]+)", re.I)
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class Anchor:
    """An ``<a href>`` with the offsets of its text in the visible or hidden channel."""

    href: str
    text: str
    hidden: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class HtmlImage:
    """An ``<img>`` (or a CSS background image) as found in the markup."""

    src: str
    width: int | None
    height: int | None
    alt: str
    hidden: bool


@dataclass(frozen=True, slots=True)
class HtmlText:
    """What an HTML part shows and hides.

    Attributes:
        visible: the text a reader sees, with line breaks at block boundaries.
        hidden: text styled invisible, one line per hidden run.
        quote_regions: ``(start, end)`` offsets in ``visible`` of reply-quote
            containers; Outlook's markers (``divRplyFwdMsg``, ``appendonsend``)
            quote everything after them, so their region runs to the end.
        anchors, images: what the markup links to and loads.
        hidden_reasons: why text was hidden (``display-none``, ``same-colour``...).
    """

    visible: str
    hidden: str
    quote_regions: tuple[tuple[int, int], ...] = ()
    anchors: tuple[Anchor, ...] = ()
    images: tuple[HtmlImage, ...] = ()
    hidden_reasons: tuple[str, ...] = ()


@dataclass(slots=True)
class _Channel:
    parts: list[str] = field(default_factory=list)
    length: int = 0
    pending_space: bool = False
    trailing_newlines: int = 0

    def text(self, value: str) -> None:
        if not value:
            return
        if self.pending_space and self.length and not self.trailing_newlines and not self.parts[-1].endswith(" "):
            self._add(" ")
        self.pending_space = False
        self._add(value)
        self.trailing_newlines = len(value) - len(value.rstrip("\n")) if value.endswith("\n") else 0

    def newline(self, hard: bool = False) -> None:
        """End the line: a block boundary adds one break, a ``<br>`` (hard) up to a blank line."""
        self.pending_space = False
        if not self.length or self.trailing_newlines >= (2 if hard else 1):
            return
        tail = self.parts[-1]
        if tail.endswith(" "):
            self.parts[-1] = tail.rstrip(" ")
            self.length -= len(tail) - len(self.parts[-1])
        self._add("\n")
        self.trailing_newlines += 1

    def _add(self, value: str) -> None:
        self.parts.append(value)
        self.length += len(value)

    def value(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class _State:
    hidden: str  # reason, "" when visible
    colour: Colour
    background: Colour
    pre: bool


def _quote_marker(tag: str, attrs: dict[str, Any]) -> str:
    """``"box"`` for a quote container, ``"to-end"`` for a marker quoting all after it, else ``""``."""
    classes = set(str(attrs.get("class") or "").lower().split())
    elem_id = str(attrs.get("id") or "").lower()
    if elem_id in ("divrplyfwdmsg", "appendonsend", "x_divrplyfwdmsg", "x_appendonsend"):
        return "to-end"
    if tag == "blockquote" and (
        str(attrs.get("type") or "").lower() == "cite" or {"gmail_quote", "yahoo_quote"} & classes
    ):
        return "box"
    if tag == "div" and ({"gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote"} & classes):
        return "box"
    return ""


def _int_attr(value: Any) -> int | None:
    if value is None:
        return None
    match = re.match(r"\s*(\d{1,6})", str(value))
    return int(match.group(1)) if match else None


def html_to_text(markup: str, max_chars: int) -> HtmlText:
    """Render ``markup`` to visible and hidden text (see the module docstring)."""
    tree = LexborHTMLParser(markup)
    sheet = StyleSheet.parse("\n".join(node.text(deep=True) for node in tree.css("style")))
    visible, hidden = _Channel(), _Channel()
    anchors: list[Anchor] = []
    images: list[HtmlImage] = []
    quote_regions: list[tuple[int, int]] = []
    reasons: list[str] = []
    root = tree.root
    if root is None:
        return HtmlText("", "")
    # Stack items: (node, state) to enter, or (None, closure data) to leave an element.
    stack: list[tuple[LexborNode | None, Any]] = [(root, _State("", BLACK, WHITE, False))]
    while stack:
        node, data = stack.pop()
        if node is None:
            if data[0] == "quote-end":
                quote_regions[data[1]] = (quote_regions[data[1]][0], visible.length)
            else:
                _leave(data, visible, hidden, anchors)
            continue
        state: _State = data
        tag = node.tag or ""
        if tag == "-text":
            channel = hidden if state.hidden else visible
            if channel.length < max_chars:
                raw = node.text_content or ""
                if state.pre:
                    channel.text(raw)
                else:
                    if raw[:1].isspace():
                        channel.pending_space = True
                    collapsed = _SPACE.sub(" ", raw).strip()
                    channel.text(collapsed)
                    if raw[-1:].isspace():
                        channel.pending_space = True
            continue
        if tag.startswith(("_", "!")) or tag in SKIP_TAGS:
            continue
        attrs = node.attributes
        inner = _inner_state(tag, attrs, state, sheet)
        if inner.hidden and not state.hidden:
            reasons.append(inner.hidden)
            hidden.newline()
        if tag == "br":
            (hidden if inner.hidden else visible).newline(hard=True)
            continue
        if tag == "img":
            images.append(_image(attrs, bool(inner.hidden)))
            continue
        background = _URL_IN_CSS.search(str(attrs.get("style") or "")) or _URL_IN_CSS.search(
            str(attrs.get("background") or "")
        )
        if background or attrs.get("background"):
            src = background.group(1) if background else str(attrs.get("background"))
            images.append(HtmlImage(src, None, None, "", bool(inner.hidden)))
        channel = hidden if inner.hidden else visible
        block = tag in BLOCK_TAGS
        if block:
            channel.newline()
        marker = "" if inner.hidden else _quote_marker(tag, attrs)
        if marker == "to-end":
            quote_regions.append((visible.length, -1))
        href = attrs.get("href") if tag in ("a", "area") else None
        leave = (tag, block, bool(inner.hidden), str(href) if href is not None else None, len(channel.parts))
        if marker == "box":
            stack.append((None, ("quote-end", len(quote_regions))))
            quote_regions.append((visible.length, -1))
        stack.append((None, leave))
        children = list(node.iter(include_text=True))
        for child in reversed(children):
            stack.append((child, inner))
    text_visible = visible.value()[:max_chars]
    text_hidden = hidden.value()[:max_chars]
    return HtmlText(
        visible=text_visible,
        hidden=text_hidden,
        quote_regions=tuple(
            sorted(
                {
                    (min(a, len(text_visible)), len(text_visible) if b < 0 else min(b, len(text_visible)))
                    for a, b in quote_regions
                }
            )
        ),
        anchors=tuple(a for a in anchors if a.end <= len(text_hidden if a.hidden else text_visible)),
        images=tuple(images),
        hidden_reasons=tuple(dict.fromkeys(reasons)),
    )


def _leave(data: Any, visible: _Channel, hidden: _Channel, anchors: list[Anchor]) -> None:
    tag, block, is_hidden, href, first_part = data
    channel = hidden if is_hidden else visible
    if href is not None:
        text = "".join(channel.parts[first_part:])
        start = channel.length - len(text)
        stripped = text.strip()
        offset = start + (len(text) - len(text.lstrip()))
        anchors.append(Anchor(href.strip(), stripped, is_hidden, offset, offset + len(stripped)))
    if block or tag in ("td", "th"):
        if tag in ("td", "th"):
            channel.pending_space = True
        else:
            channel.newline()


def _inner_state(tag: str, attrs: dict[str, Any], state: _State, sheet: StyleSheet) -> _State:
    classes = str(attrs.get("class") or "").lower().split()
    decl = sheet.for_element(tag, classes, str(attrs.get("id") or "").lower())
    decl.update(declarations(str(attrs.get("style") or "")))
    colour, background = state.colour, state.background
    for source in (attrs.get("color") if tag == "font" else None, decl.get("color")):
        parsed = parse_colour(str(source)) if source else None
        if parsed is not None:
            colour = parsed
    for source in (attrs.get("bgcolor"), decl.get("background-color"), decl.get("background")):
        parsed = parse_colour(str(source).split()[0]) if source and str(source).split() else None
        if parsed is not None:
            background = parsed
    reason = state.hidden or hides(decl)
    if not reason and "hidden" in attrs:
        reason = "hidden-attribute"
    if not reason and tag == "font" and _int_attr(attrs.get("size")) == 0:
        reason = "font-size-zero"
    if not reason and similar(colour, background) and (colour != state.colour or background != state.background):
        reason = "same-colour"
    if not reason and tag in ("div", "span", "p", "td", "table"):
        width, height = length_px(decl.get("width", "")), length_px(decl.get("height", ""))
        if width is not None and height is not None and width <= 1 and height <= 1:
            reason = "zero-size"
    pre = state.pre or tag in ("pre", "textarea") or decl.get("white-space", "").startswith("pre")
    return _State(reason, colour, background, pre)


def _image(attrs: dict[str, Any], hidden: bool) -> HtmlImage:
    decl = declarations(str(attrs.get("style") or ""))
    width = _int_attr(attrs.get("width"))
    height = _int_attr(attrs.get("height"))
    if width is None and "width" in decl:
        px = length_px(decl["width"])
        width = int(px) if px is not None and px >= 0 else None
    if height is None and "height" in decl:
        px = length_px(decl["height"])
        height = int(px) if px is not None and px >= 0 else None
    hidden = hidden or bool(hides(decl))
    return HtmlImage(str(attrs.get("src") or "").strip(), width, height, str(attrs.get("alt") or ""), hidden)
