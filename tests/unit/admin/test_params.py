"""Option values of the admin commands: times (ISO 8601 or an age) and ages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from gateway.admin.params import parse_age, parse_time
from gateway.cli import main

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("30D", timedelta(days=30)),
        (" 4w ", timedelta(weeks=4)),
    ],
)
def test_ages(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["30", "0d", "-2h", "2 days", "1.5h", "h", "", "7y"])
def test_bad_ages_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"age") as info:
        parse_age(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2h", datetime(2025, 5, 20, 10, 0, tzinfo=UTC)),
        ("7d", datetime(2025, 5, 13, 12, 0, tzinfo=UTC)),
        ("2025-05-01", datetime(2025, 5, 1, tzinfo=UTC)),
        ("2025-05-01T14:30", datetime(2025, 5, 1, 14, 30, tzinfo=UTC)),  # no offset: UTC
        ("2025-05-01 14:30:15", datetime(2025, 5, 1, 14, 30, 15, tzinfo=UTC)),
        ("2025-05-01T14:30:00Z", datetime(2025, 5, 1, 14, 30, tzinfo=UTC)),
        ("2025-05-01T14:30:00+02:00", datetime(2025, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_times(text: str, moment: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "05/01/2025", "2025-05-01T25:00"])
def test_bad_times_show_both_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"ISO 8601 .* or an age such as 2h or 7d"):
        parse_time(text, NOW)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["quarantine", "list", "--since", "last week"], "--since"),
        (["quarantine", "purge", "--older-than", "30"], "--older-than"),
        (["quarantine", "list", "--status", "pending"], "--status"),
        (["quarantine", "list", "--limit", "0"], "--limit"),
        (["decisions", "list", "--action", "hold"], "--action"),
        (["decisions", "stats", "--until", "soon"], "--until"),
        (["users", "add", "bob", "--role", "root"], "--role"),
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str], option: str) -> None:
    """Exit status 2 and click's message naming the option, before any store is opened."""
    result = CliRunner().invoke(main, [*args, "--dev", "--data-dir", "/nonexistent/gateway-data"])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output
