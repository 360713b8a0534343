"""Query strings of the log pages read into typed queries, with clear errors naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.model import Action
from gateway.web.logquery import (
    MAX_PERIOD_DAYS,
    FilterError,
    audit_filters,
    decision_filters,
    pager,
    period,
    query_string,
)

TODAY = date(2025, 5, 20)


def test_decision_filters_map_every_field() -> None:
    """Each form field lands in the DecisionQuery; days become a half-open UTC range."""
    params = {
        "action": "quarantine",
        "outcome": "quarantined",
        "rule": "review.removal",
        "category": "review.removal",
        "language": "DE",
        "account": " acme ",
        "profile": "amazon",
        "since": "2025-05-01",
        "until": "2025-05-02",
        "q": "order  302",
        "page": "3",
        "unknown": "ignored",
    }
    found = decision_filters(params, size=20)
    query = found.query
    assert query.action is Action.QUARANTINE
    assert query.outcome == "quarantined"
    assert (query.rule, query.category, query.language) == ("review.removal", "review.removal", "de")
    assert (query.account, query.profile, query.text) == ("acme", "amazon", "order 302")
    assert query.since == datetime(2025, 5, 1, tzinfo=UTC)
    assert query.until == datetime(2025, 5, 3, tzinfo=UTC)  # the 2nd is included
    assert (query.limit, query.offset, found.page) == (20, 40, 3)
    assert found.values["language"] == "de"
    assert "unknown" not in found.values


def test_empty_filters_mean_everything() -> None:
    """No parameters: no narrowing, first page."""
    found = decision_filters({})
    assert found.query.action is None
    assert found.query.since is None
    assert found.query.until is None
    assert found.query.text is None
    assert found.query.offset == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "drop"}, "action: 'drop' is not one of pass, quarantine, reject"),
        ({"category": "spam"}, "category: 'spam' is not a known category"),
        ({"rule": "Review Removal"}, "rule: 'Review Removal' is not a rule id"),
        ({"language": "english"}, "language: 'english' is not a two-letter language code"),
        ({"since": "2025-13-01"}, "since: '2025-13-01' is not a date (YYYY-MM-DD)"),
        ({"since": "2025-05-02", "until": "2025-05-01"}, "until: 2025-05-01 is before since (2025-05-02)"),
        ({"page": "0"}, "page: '0' is not a page number"),
        ({"page": "two"}, "page: 'two' is not a page number"),
        ({"q": "x" * 201}, "q: at most 200 characters"),
    ],
)
def test_bad_decision_filters_name_the_field(params: dict[str, str], message: str) -> None:
    """Each bad value is refused with the field's name and what it accepts."""
    with pytest.raises(FilterError) as info:
        decision_filters(params)
    assert str(info.value).startswith(message)
    assert info.value.field == message.split(":")[0]


def test_audit_filters() -> None:
    """Actor, action and target are exact; days are inclusive."""
    found = audit_filters({"actor": "alice", "action": "release", "target": "Q1", "until": "2025-05-01", "page": "2"})
    query = found.query
    assert (query.actor, query.action, query.target) == ("alice", "release", "Q1")
    assert query.since is None
    assert query.until == datetime(2025, 5, 2, tzinfo=UTC)
    assert query.offset == 50
    with pytest.raises(FilterError, match="since: 'yesterday' is not a date"):
        audit_filters({"since": "yesterday"})


def test_pager_keeps_the_filters_in_its_links() -> None:
    """Neighbour links carry the filters; the first page has no page parameter."""
    filters = {"action": "reject", "q": "a&b", "rule": ""}
    middle = pager(filters, page=2, total=120, shown=50)
    assert (middle.pages, middle.first, middle.last) == (3, 51, 100)
    assert middle.previous_url == "?action=reject&q=a%26b"
    assert middle.next_url == "?action=reject&q=a%26b&page=3"
    last = pager(filters, page=3, total=120, shown=20)
    assert (last.first, last.last, last.next_url) == (101, 120, None)
    empty = pager({}, page=1, total=0, shown=0)
    assert (empty.pages, empty.first, empty.last, empty.previous_url, empty.next_url) == (1, 0, 0, None, None)


def test_query_string_drops_empty_values() -> None:
    """Only set filters appear in links."""
    assert query_string({"a": "", "b": "x y"}) == "?b=x+y"
    assert query_string({}) == ""


def test_preset_periods_end_today() -> None:
    """`period=7` is the last seven days including today; the default is 30 days."""
    week = period({"period": "7"}, TODAY)
    assert (week.first, week.last, week.days) == (date(2025, 5, 14), TODAY, 7)
    assert week.since == datetime(2025, 5, 14, tzinfo=UTC)
    assert week.until == datetime(2025, 5, 21, tzinfo=UTC)
    assert period({}, TODAY).days == 30
    today = period({"period": "1"}, TODAY)
    assert today.label == "2025-05-20"
    assert today.log_filters() == {"since": "2025-05-20", "until": "2025-05-20"}


def test_edited_dates_win_over_the_preset() -> None:
    """The form echoes the preset's dates; changing one makes the range custom, keeping them makes no difference."""
    echoed = period({"period": "7", "since": "2025-05-14", "until": "2025-05-20"}, TODAY)
    assert (echoed.choice, echoed.days) == ("7", 7)
    edited = period({"period": "7", "since": "2025-05-01", "until": "2025-05-20"}, TODAY)
    assert (edited.choice, edited.first, edited.last) == ("custom", date(2025, 5, 1), TODAY)


def test_custom_period() -> None:
    """A custom range takes both days; a missing end is today, a missing start is 29 days before the end."""
    custom = period({"period": "custom", "since": "2025-04-01", "until": "2025-04-10"}, TODAY)
    assert (custom.first, custom.last, custom.label) == (date(2025, 4, 1), date(2025, 4, 10), "2025-04-01 – 2025-04-10")
    assert period({"period": "custom", "since": "2025-05-01"}, TODAY).last == TODAY
    assert period({"period": "custom", "until": "2025-04-30"}, TODAY).first == date(2025, 4, 1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "365"}, "period: '365' is not one of"),
        ({"period": "custom", "since": "2025-05-21", "until": "2025-05-20"}, "until: 2025-05-20 is before since"),
        ({"period": "custom", "since": "2020-01-01"}, f"since: the period is longer than {MAX_PERIOD_DAYS} days"),
    ],
)
def test_bad_periods(params: dict[str, str], message: str) -> None:
    """Unknown presets, reversed and overlong ranges are refused by name."""
    with pytest.raises(FilterError) as info:
        period(params, TODAY)
    assert str(info.value).startswith(message)
