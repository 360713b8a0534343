"""JSON text with orjson, for the two hot writers: log lines and the store's JSON columns.

orjson is several times faster than the standard library but refuses what it
cannot represent exactly (integers beyond 64 bits, non-string keys); such a
value is written by :mod:`json` instead, so nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as compact JSON text; ``default`` converts objects neither library knows."""
    try:
        return orjson.dumps(value, default=default).decode("utf-8")
    except TypeError:
        return json.dumps(value, default=default)
