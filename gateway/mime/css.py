"""The little CSS a mail client applies that can hide text.

Not a CSS engine: inline ``style`` declarations, legacy presentational
attributes (``<font color>``, ``bgcolor``) and simple ``<style>`` rules with
class, id or tag selectors are enough to catch what sellers use to hide words
from the buyer but keep them in the mail (display:none, visibility:hidden, zero
font size, zero opacity, text coloured like its background, off-screen
positioning, zero-height boxes with hidden overflow, Outlook's mso-hide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DECL = re.compile(r"([a-zA-Z-]+)\s*:\s*([^;]*)")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LENGTH = re.compile(r"^\s*(-?\d*\.?\d+)\s*(px|pt|em|rem|%|ex|ch|vw|vh|cm|mm|in)?\s*$")

NAMED_COLOURS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "whitesmoke": (245, 245, 245),
    "snow": (255, 250, 250),
    "ivory": (255, 255, 240),
    "yellow": (255, 255, 0),
    "navy": (0, 0, 128),
}

Colour = tuple[int, int, int]


def declarations(style: str) -> dict[str, str]:
    """``prop -> value`` for a declaration block (later wins; ``!important`` dropped)."""
    result: dict[str, str] = {}
    for name, value in _DECL.findall(_COMMENT.sub("", style)):
        result[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return result


def parse_colour(value: str) -> Colour | None:
    """An RGB triple for ``#rgb``, ``#rrggbb``, ``rgb(...)`` or a common name; else ``None``."""
    value = value.strip().lower()
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) in (3, 4) and all(c in "0123456789abcdef" for c in digits):
            return (int(digits[0] * 2, 16), int(digits[1] * 2, 16), int(digits[2] * 2, 16))
        if len(digits) in (6, 8) and all(c in "0123456789abcdef" for c in digits):
            return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
        return None
    match = re.match(r"rgba?\(\s*(\d+)%?\s*[, ]\s*(\d+)%?\s*[, ]\s*(\d+)%?", value)
    if match:
        r, g, b = (min(int(x), 255) for x in match.groups())
        return (r, g, b)
    if re.fullmatch(r"[0-9a-f]{6}", value):  # bgcolor="ffffff" without the hash, as old editors write
        return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
    return NAMED_COLOURS.get(value)


def similar(a: Colour, b: Colour) -> bool:
    """Colours a reader cannot tell apart (text "invisible" on its background)."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) <= 24


def length_px(value: str) -> float | None:
    """A CSS length in (approximate) pixels, ``None`` when not a plain length."""
    match = _LENGTH.match(value)
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2) or "px"
    factor = {"pt": 4 / 3, "em": 16.0, "rem": 16.0, "ex": 8.0, "ch": 8.0, "cm": 37.8, "mm": 3.78, "in": 96.0}
    return number * factor.get(unit, 1.0) if unit not in ("%", "vw", "vh") else number


def hides(decl: dict[str, str]) -> str:
    """The reason these declarations make content invisible, or ``""``."""
    if decl.get("display", "").startswith("none"):
        return "display-none"
    if decl.get("visibility", "") in ("hidden", "collapse"):
        return "visibility-hidden"
    if decl.get("mso-hide", "") == "all":
        return "mso-hide"
    opacity = decl.get("opacity")
    if opacity is not None:
        try:
            if float(opacity.rstrip("%")) <= 0.05:
                return "opacity-zero"
        except ValueError:
            pass
    size = decl.get("font-size")
    if size is not None:
        px = length_px(size)
        if px is not None and px <= 1:
            return "font-size-zero"
    for prop in ("left", "top", "text-indent", "margin-left", "margin-top"):
        px = length_px(decl.get(prop, ""))
        if px is not None and px <= -500:
            return "off-screen"
    overflow = decl.get("overflow", "")
    if overflow == "hidden":
        for prop in ("max-height", "height", "width", "max-width"):
            px = length_px(decl.get(prop, ""))
            if px is not None and px <= 1:
                return "zero-size"
    clip = decl.get("clip", "") + decl.get("clip-path", "")
    if "rect(0" in clip.replace(" ", "") or "inset(50%" in clip.replace(" ", ""):
        return "clipped"
    return ""


@dataclass(frozen=True, slots=True)
class StyleSheet:
    """Simple rules from ``<style>`` blocks: selector key -> declarations."""

    rules: tuple[tuple[str, dict[str, str]], ...] = ()

    @classmethod
    def parse(cls, css: str) -> StyleSheet:
        """Keep rules whose selectors are ``tag``, ``.class``, ``#id`` or ``tag.class``."""
        rules: list[tuple[str, dict[str, str]]] = []
        for selectors, body in _RULE.findall(_COMMENT.sub("", css[:200_000])):
            decl = declarations(body)
            if not decl:
                continue
            for selector in selectors.split(","):
                selector = selector.strip().lower()
                if re.fullmatch(r"[a-z0-9]*(?:[.#][\w-]+)?", selector) and selector:
                    rules.append((selector, decl))
        return cls(tuple(rules))

    def for_element(self, tag: str, classes: list[str], elem_id: str) -> dict[str, str]:
        """Declarations of every rule matching the element, in source order."""
        merged: dict[str, str] = {}
        for selector, decl in self.rules:
            if _matches(selector, tag, classes, elem_id):
                merged.update(decl)
        return merged


def _matches(selector: str, tag: str, classes: list[str], elem_id: str) -> bool:
    match = re.fullmatch(r"([a-z0-9]*)(?:([.#])([\w-]+))?", selector)
    if not match:
        return False
    want_tag, kind, name = match.groups()
    if want_tag and want_tag != tag:
        return False
    if kind == ".":
        return name in classes
    if kind == "#":
        return name == elem_id
    return bool(want_tag)
