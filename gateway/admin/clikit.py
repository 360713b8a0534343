"""What every admin command shares: the config options, the acting user, running the service, output.

An admin command is a plain function decorated with :func:`admin_command`; it
receives an :class:`AdminContext` (the resolved configuration and the acting
user) and calls :func:`run_service` with a coroutine over the review service.
Errors the operator can act on (unknown id, wrong state, bad input, database
down, invalid policy) end the command with one line on stderr and exit
status 1; click's own usage errors (bad option values) exit with 2.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.admin.results import InputError
from gateway.admin.runtime import ReviewRuntime, open_review
from gateway.config import LoggingConfig
from gateway.logging import configure_logging
from gateway.policy.loader import PolicyError
from gateway.serve.options import ConfigSource, config_options, resolve_config
from gateway.store import StoreError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Longest acting user name the audit log keeps.
MAX_USER = 128
#: Longest quarantine id (the queue id column).
MAX_ID = 64


@dataclass(frozen=True)
class AdminContext:
    """What an admin command runs with.

    Attributes:
        source: the configuration (``--config`` or ``--dev``).
        user: who is acting, as written to the audit log.
    """

    source: ConfigSource
    user: str


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (a bare container)
        raise click.UsageError("cannot tell who you are for the audit log: give --user NAME") from None


def _check_user(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value.strip() or len(value) > MAX_USER or not value.isprintable()):
        raise click.BadParameter(f"give a printable name of 1-{MAX_USER} characters", ctx, param)
    return value


def admin_command(func: Callable[..., T]) -> Callable[..., T]:
    """Add ``--config``/``--dev``/``--data-dir``/``--capture-port`` and ``--user``; pass an :class:`AdminContext`.

    Apply it below ``@group.command()`` and above the command's own options.
    """

    @functools.wraps(func)
    def wrapper(
        config_path: Path | None,
        dev: bool,
        data_dir: Path | None,
        capture_port: int | None,
        user: str | None,
        **kwargs: Any,
    ) -> T:
        source = resolve_config(config_path, dev, data_dir, capture_port, create=False, pick_port=False)
        # Only errors reach the terminal, on stderr: stdout carries tables, JSON or a message's bytes.
        configure_logging(LoggingConfig(level="error"), console=True, stream=sys.stderr)
        return func(AdminContext(source, user or _login_name()), **kwargs)

    option = click.option(
        "--user",
        metavar="NAME",
        callback=_check_user,
        help="Who is acting, for the audit log (default: your login name).",
    )
    return config_options(option(wrapper))


def json_option(func: F) -> F:
    """Add ``--json`` (the stable machine-readable output documented in docs/quarantine.md)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def check_id(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Refuse quarantine ids no message can have (the store's column holds 64 characters)."""
    values = value if isinstance(value, tuple) else (value,)
    for ident in values:
        if ident is not None and (len(ident) > MAX_ID or not ident.isprintable() or not ident.strip()):
            raise click.BadParameter(f"{ident[:80]!r} is not a quarantine id", ctx, param)
    return value


class CommandFailed(click.ClickException):
    """An error the operator can act on: one line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        """``gateway: <message>`` on stderr."""
        click.echo(f"gateway: {self.format_message()}", err=True)


def run_service(ctx: AdminContext, work: Callable[[ReviewRuntime], Awaitable[T]]) -> T:
    """Open the store and the service for ``ctx``, run ``work`` on them, close them.

    Raises:
        CommandFailed: unknown id, wrong state, bad input, a database or policy error.
    """

    async def main() -> T:
        async with open_review(ctx.source.config) as runtime:
            return await work(runtime)

    try:
        return asyncio.run(main())
    except (StoreError, InputError, PolicyError) as exc:
        raise CommandFailed(str(exc)) from None


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as indented JSON, or ``text``."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(text)
