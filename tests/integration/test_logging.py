"""The real logging setup: JSON lines with connection and message context, never a body."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from gateway.config import LoggingConfig
from gateway.logging import configure_logging
from tests.support.client import send
from tests.support.messages import message
from tests.support.servers import RunningGateway


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging(LoggingConfig(), stream=buffer)
    yield buffer
    structlog.reset_defaults()


def events(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_lines_with_bound_context(log_lines: io.StringIO, gateway: RunningGateway) -> None:
    """Connection events and one message_decided per message, carrying conn_id, peer and queue_id."""
    send(gateway.host, gateway.port, message("[hold] hello", body="a very private body\r\n"))
    send(gateway.host, gateway.port, message("second"))
    gateway.shutdown(grace=1)
    logged = events(log_lines)
    names = [e["event"] for e in logged]
    assert names.count("connection_opened") == 2
    assert names.count("connection_closed") == 2
    decided = [e for e in logged if e["event"] == "message_decided"]
    assert len(decided) == 2
    for event in decided:
        assert event["level"] == "info"
        assert event["conn_id"]
        assert event["peer"] == "127.0.0.1"
        assert event["queue_id"]
        assert "timestamp" in event
    assert decided[0]["outcome"] == "quarantined"
    assert decided[1]["outcome"] == "relayed"
    assert decided[0]["conn_id"] != decided[1]["conn_id"]
    assert "private body" not in log_lines.getvalue()


def test_aiosmtpd_command_log_is_silenced(log_lines: io.StringIO, gateway: RunningGateway) -> None:
    """The per-command INFO lines of aiosmtpd (which carry addresses in clear) are not emitted."""
    send(gateway.host, gateway.port)
    assert "RCPT TO" not in log_lines.getvalue()
    assert "recip:" not in log_lines.getvalue()


def test_values_orjson_refuses_are_still_logged(log_lines: io.StringIO) -> None:
    """Integers beyond 64 bits and odd objects are written, not dropped (orjson falls back)."""
    from datetime import UTC, datetime
    from pathlib import Path

    log = structlog.get_logger("test")
    log.info("odd_values", when=datetime(2026, 11, 22, tzinfo=UTC), path=Path("/tmp/x"))
    log.info("huge_value", big=2**70)
    odd, huge = events(log_lines)
    assert odd["when"] == "2026-11-22T00:00:00+00:00"
    assert "/tmp/x" in odd["path"]  # unknown objects are written as their repr
    assert huge["big"] == 2**70
    assert list(huge)[:3] == ["timestamp", "level", "event"]
