"""structlog setup: JSON lines on stdout by default, a console renderer for people.

Every event is a snake_case past-tense name (``message_decided``,
``connection_opened``) with typed fields; ``conn_id``/``peer`` are bound per
SMTP connection and ``queue_id`` per message through context variables, so an
event logged anywhere below the SMTP layer carries them. Message bodies are
never logged.

Standard-library logging (aiosmtpd, aiosmtplib, uvicorn) goes through the same
renderer; aiosmtpd's per-command INFO lines are silenced because they would
log recipient addresses in clear even when pseudonymisation is on.

Recipient addresses can be pseudonymised: :class:`Pseudonymizer` replaces the
local part with the first 16 hex digits of HMAC-SHA256 of the whole address
under ``logging.pseudonym_key`` and keeps the domain (which marketplace relay it was
for is operational information, the buyer alias is not).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

from gateway.config import LoggingConfig
from gateway.jsontext import dumps

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Chatty third-party loggers: aiosmtpd logs every command (with addresses) at INFO.
_QUIET = {"mail.log": logging.WARNING, "aiosmtplib": logging.WARNING, "asyncio": logging.WARNING}


def _event_first(logger: object, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Put timestamp, level and event first, so a JSON line reads like a log line."""
    head: dict[str, Any] = {key: event_dict.pop(key) for key in ("timestamp", "level", "event") if key in event_dict}
    return {**head, **event_dict}


def _dumps(event: dict[str, Any], **options: Any) -> str:
    """Structlog's serializer hook: one JSON line (see :mod:`gateway.jsontext`)."""
    return dumps(event, default=options.get("default"))


def configure_logging(config: LoggingConfig, *, console: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library for this process.

    Args:
        config: the ``[logging]`` section.
        console: force the human renderer (``--dev``) or JSON; ``None`` follows ``config.format``.
        stream: where lines go (stdout by default).
    """
    out = stream if stream is not None else sys.stdout
    level = _LEVELS[config.level]
    use_console = config.format == "console" if console is None else console
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        shared.append(_event_first)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.processors.format_exc_info],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, level))


class Pseudonymizer:
    """Replaces recipient addresses by keyed hashes in logs when configured."""

    def __init__(self, config: LoggingConfig) -> None:
        key = config.pseudonym_key
        self._key = key.get_secret_value().encode("utf-8") if config.pseudonymize_recipients and key else None

    @property
    def enabled(self) -> bool:
        """Whether addresses are replaced."""
        return self._key is not None

    def address(self, address: str) -> str:
        """``address`` as it may appear in a log line."""
        if self._key is None:
            return address
        domain = address.rpartition("@")[2] if "@" in address else ""
        # The whole address is hashed, so equal local parts at different domains differ.
        digest = hmac.new(self._key, address.lower().encode("utf-8"), hashlib.sha256).hexdigest()[:16]
        return f"{digest}@{domain.lower()}" if domain else digest

    def addresses(self, addresses: Iterable[str]) -> list[str]:
        """Every address of ``addresses`` as it may appear in a log line."""
        return [self.address(a) for a in addresses]
