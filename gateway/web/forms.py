"""Reading filter and action forms: typed values, or errors that name the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from starlette.datastructures import FormData, QueryParams

#: Largest page a list view serves, whatever the URL asks.
MAX_PAGE_SIZE = 200


@dataclass
class FieldErrors:
    """Problems found while reading a form, by field name."""

    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        """Record that field ``name`` is wrong and why."""
        self.errors[name] = message

    def __bool__(self) -> bool:
        return bool(self.errors)

    def messages(self) -> list[str]:
        """One sentence per bad field, naming it."""
        return [f"{name}: {message}" for name, message in self.errors.items()]


def text(params: QueryParams | FormData, name: str, limit: int = 200) -> str | None:
    """A trimmed text field, ``None`` when empty."""
    value = params.get(name)
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())[:limit]
    return value or None


def day(params: QueryParams | FormData, name: str, errors: FieldErrors, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` field as UTC midnight (``end``: the midnight after, so the day is included)."""
    raw = text(params, name, 40)
    if raw is None:
        return None
    try:
        parsed = date.fromisoformat(raw)
    except ValueError:
        errors.add(name, f"{raw!r} is not a date (use YYYY-MM-DD)")
        return None
    moment = datetime.combine(parsed, time(), tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def page_number(params: QueryParams, errors: FieldErrors) -> int:
    """The 1-based ``page`` parameter (1 when absent or wrong)."""
    raw = params.get("page")
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        errors.add("page", f"{raw!r} is not a page number")
        return 1
    return min(int(raw), 1_000_000)


def choice(params: QueryParams | FormData, name: str, allowed: tuple[str, ...], errors: FieldErrors) -> str | None:
    """A value that must be one of ``allowed`` (``None`` when empty)."""
    raw = text(params, name, 100)
    if raw is None:
        return None
    if raw not in allowed:
        errors.add(name, f"{raw!r} is not one of {', '.join(allowed)}")
        return None
    return raw
