"""Reading the log pages' query strings into the review service's typed queries.

The decision log, the audit log and the dashboard take their filters from the
URL (so a filtered view can be bookmarked and linked from a chart). Parsing
lives here, apart from the routes, so it is tested without HTTP. Bad values are
reported with the name of the field and what it accepts, never a traceback.

Dates are calendar days in UTC, both ends included: ``since=2025-05-01`` and
``until=2025-05-01`` mean that one day (the store's ``until`` is exclusive, so
it gets the next midnight).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from gateway.model import Action, Category
from gateway.store.records import AuditQuery, DecisionQuery

#: Rows per page of the decision and audit logs.
PAGE_SIZE = 50

#: The longest dashboard period, in days (a year of daily columns is still readable).
MAX_PERIOD_DAYS = 366

#: The dashboard's preset periods, ``value -> label``.
PERIODS = {"1": "Today", "7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "custom": "Custom range"}

_RULE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_MAX_TEXT = 200  # longest free-text filter accepted (a search box, an account name)

DECISION_FIELDS = ("action", "outcome", "rule", "category", "language", "account", "profile", "since", "until", "q")

#: What happened to a decided message (the decision log's ``outcome`` column).
OUTCOMES = ("relayed", "quarantined", "rejected", "failed")
AUDIT_FIELDS = ("actor", "action", "target", "since", "until")


class FilterError(ValueError):
    """A filter value is unusable; ``field`` names it, the message says what it accepts."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _clean(params: Mapping[str, str], name: str) -> str:
    value = " ".join(str(params.get(name, "")).split())
    if len(value) > _MAX_TEXT:
        raise FilterError(name, f"at most {_MAX_TEXT} characters")
    return value


def parse_day(value: str, field: str) -> date | None:
    """``YYYY-MM-DD`` (what an HTML date input sends) as a date; empty gives ``None``."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """The store's half-open ``[since, until)`` for days ``since..until`` both included.

    Raises:
        FilterError: ``until`` is before ``since``.
    """
    if since is not None and until is not None and until < since:
        raise FilterError("until", f"{until.isoformat()} is before since ({since.isoformat()})")
    start = day_start(since) if since is not None else None
    end = day_start(until + timedelta(days=1)) if until is not None else None
    return start, end


def page_number(params: Mapping[str, str]) -> int:
    """The 1-based ``page`` parameter (1 when absent)."""
    value = str(params.get("page", "")).strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise FilterError("page", f"{value!r} is not a page number (1, 2, ...)")
    return int(value)


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a page sits in the results, with links to its neighbours (filters kept).

    Attributes:
        page: this page, from 1.
        pages: how many pages there are (at least 1).
        total: rows matching the filters.
        first, last: 1-based positions of the rows shown (0 when none).
        previous_url, next_url: query strings of the neighbouring pages, ``None`` at the ends.
    """

    page: int
    pages: int
    total: int
    first: int
    last: int
    previous_url: str | None
    next_url: str | None


def pager(filters: Mapping[str, str], page: int, total: int, shown: int, size: int = PAGE_SIZE) -> Pager:
    """The pager for ``page`` of ``total`` rows, ``shown`` of them on this page."""
    pages = max(1, -(-total // size))
    first = (page - 1) * size + 1 if shown else 0

    def link(number: int) -> str:
        return query_string({**filters, "page": str(number) if number > 1 else ""})

    return Pager(
        page=page,
        pages=pages,
        total=total,
        first=first,
        last=first + shown - 1 if shown else 0,
        previous_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
    )


def query_string(values: Mapping[str, str]) -> str:
    """``?a=1&b=2`` of the non-empty values (``""`` when there are none)."""
    kept = {k: v for k, v in values.items() if v}
    return "?" + urlencode(kept) if kept else ""


@dataclass(frozen=True, slots=True)
class DecisionFilters:
    """The decision log's filters as given (for the form) and as a query (for the service)."""

    values: dict[str, str]
    query: DecisionQuery
    page: int


def decision_filters(params: Mapping[str, str], size: int = PAGE_SIZE) -> DecisionFilters:
    """Read the decision log's filters; unknown parameters are ignored.

    Raises:
        FilterError: a value is not one the field accepts.
    """
    values = {name: _clean(params, name) for name in DECISION_FIELDS}
    action = values["action"]
    if action and action not in {a.value for a in Action}:
        raise FilterError("action", f"{action!r} is not one of {', '.join(a.value for a in Action)}")
    outcome = values["outcome"]
    if outcome and outcome not in OUTCOMES:
        raise FilterError("outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}")
    category = values["category"]
    if category and category not in {c.value for c in Category}:
        raise FilterError("category", f"{category!r} is not a known category")
    rule = values["rule"]
    if rule and not _RULE.match(rule):
        raise FilterError("rule", f"{rule!r} is not a rule id (lower-case words joined by dots)")
    language = values["language"].lower()
    values["language"] = language
    if language and not _LANGUAGE.match(language):
        raise FilterError("language", f"{language!r} is not a two-letter language code")
    since, until = day_range(parse_day(values["since"], "since"), parse_day(values["until"], "until"))
    page = page_number(params)
    query = DecisionQuery(
        action=Action(action) if action else None,
        outcome=outcome or None,
        rule=rule or None,
        category=category or None,
        language=language or None,
        account=values["account"] or None,
        profile=values["profile"] or None,
        since=since,
        until=until,
        text=values["q"] or None,
        limit=size,
        offset=(page - 1) * size,
    )
    return DecisionFilters(values=values, query=query, page=page)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The audit log's filters as given and as a query."""

    values: dict[str, str]
    query: AuditQuery
    page: int


def audit_filters(params: Mapping[str, str], size: int = PAGE_SIZE) -> AuditFilters:
    """Read the audit log's filters.

    Raises:
        FilterError: a date is malformed or the range is reversed.
    """
    values = {name: _clean(params, name) for name in AUDIT_FIELDS}
    since, until = day_range(parse_day(values["since"], "since"), parse_day(values["until"], "until"))
    page = page_number(params)
    query = AuditQuery(
        actor=values["actor"] or None,
        action=values["action"] or None,
        target=values["target"] or None,
        since=since,
        until=until,
        limit=size,
        offset=(page - 1) * size,
    )
    return AuditFilters(values=values, query=query, page=page)


@dataclass(frozen=True, slots=True)
class Period:
    """The dashboard's period: whole UTC days ``first..last``, both included.

    Attributes:
        choice: the preset (``"7"``, ``"30"``...) or ``"custom"``.
        first, last: the first and last day shown.
    """

    choice: str
    first: date
    last: date

    @property
    def since(self) -> datetime:
        """Start of the first day (inclusive)."""
        return day_start(self.first)

    @property
    def until(self) -> datetime:
        """Start of the day after the last (exclusive)."""
        return day_start(self.last + timedelta(days=1))

    @property
    def days(self) -> int:
        """How many days the period spans."""
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        """``2025-05-01 – 2025-05-30`` (one date for a single day)."""
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"

    def log_filters(self) -> dict[str, str]:
        """The decision log's date filters for this period."""
        return {"since": self.first.isoformat(), "until": self.last.isoformat()}


def period(params: Mapping[str, str], today: date) -> Period:
    """Read the dashboard's period: ``period=7|30|90|1`` (last N days up to today) or custom ``since``/``until``.

    A custom range missing ``since`` starts 29 days before ``until``; missing ``until`` ends today.
    Dates other than the preset's own make the range custom (someone edited them in the form).

    Raises:
        FilterError: an unknown preset, a malformed date, a reversed or too long range.
    """
    choice = str(params.get("period", "")).strip() or "30"
    if choice not in PERIODS:
        raise FilterError("period", f"{choice!r} is not one of {', '.join(PERIODS)}")
    if choice != "custom":
        preset = Period(choice, today - timedelta(days=int(choice) - 1), today)
        given = (_clean(params, "since"), _clean(params, "until"))
        # The form shows the preset's dates; a date edited there wins over the preset still selected.
        if given == ("", "") or given == (preset.first.isoformat(), preset.last.isoformat()):
            return preset
        choice = "custom"
    since = parse_day(_clean(params, "since"), "since")
    until = parse_day(_clean(params, "until"), "until") or today
    first = since if since is not None else until - timedelta(days=29)
    if until < first:
        raise FilterError("until", f"{until.isoformat()} is before since ({first.isoformat()})")
    if (until - first).days + 1 > MAX_PERIOD_DAYS:
        raise FilterError("since", f"the period is longer than {MAX_PERIOD_DAYS} days")
    return Period(choice, first, until)
