"""Parsing the admin commands' option values: points in time and ages.

Kept apart from the click commands so the rules are unit-tested as plain
functions; :class:`SinceType` and :class:`AgeType` wrap them so a bad value is
click's usage error (exit status 2) naming the option.

- A point in time is ISO 8601 (``2025-05-01``, ``2025-05-01T14:30``,
  ``2025-05-01T14:30:00+02:00``, ``...Z``) or an age meaning "that long ago"
  (``90m``, ``2h``, ``7d``). A time without an offset is UTC, like every time the
  store keeps and the commands print.
- An age is a whole number with a unit: ``s``, ``m`` (minutes), ``h``, ``d``, ``w``.
  A bare number is refused: ``30`` could be days or seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click

_AGE = re.compile(r"^\s*(\d{1,7})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """A positive duration from ``90m``, ``2h``, ``7d``, ``4w``.

    Raises:
        ValueError: not a number with one of the units s, m, h, d, w, or zero.
    """
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age: use a whole number and a unit, e.g. 90m, 2h, 7d, 4w")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount == 0:
        raise ValueError(f"{text!r}: the age must be more than zero")
    return timedelta(**{_UNITS[unit]: amount})


def parse_time(text: str, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 or an age before ``now`` (``2h`` = two hours ago).

    Raises:
        ValueError: neither form; the message shows both.
    """
    value = text.strip()
    if _AGE.match(value):
        return now - parse_age(value)
    try:
        if len(value) == 10:  # a date alone: midnight UTC
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2025-05-01, 2025-05-01T14:30, 2025-05-01T14:30+02:00) "
            "or an age such as 2h or 7d"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SinceType(click.ParamType[datetime, Any]):
    """A click option value parsed with :func:`parse_time`."""

    name = "TIME"

    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """The datetime, or click's usage error naming the option."""
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value), self._clock())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AgeType(click.ParamType[timedelta, Any]):
    """A click option value parsed with :func:`parse_age`."""

    name = "AGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        """The duration, or click's usage error naming the option."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_age(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SINCE = SinceType()
AGE = AgeType()
