"""``gateway serve`` and ``gateway passwd``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import ValidationError

from gateway.config import Config, ServerConfig
from gateway.logging import configure_logging
from gateway.serve.options import config_options, resolve_config
from gateway.serve.supervisor import CaptureSpec, Service, Supervisor
from gateway.smtp.auth import hash_password


def extra_services(config: Config) -> list[Service]:
    """Web surfaces served by the supervisor next to the SMTP workers.

    The admin console plugs in here: when it exists, return
    ``[AsgiService("admin", create_app(config), *config.admin.listen_address)]``
    if ``config.admin.enabled`` (see :mod:`gateway.serve.asgi`).
    """
    return []


def _override_listen(config: Config, listen: str) -> Config:
    try:
        server = ServerConfig.model_validate({**config.server.model_dump(), "listen": listen})
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"], param_hint="--listen") from None
    return config.model_copy(update={"server": server})


@click.command("serve")
@config_options
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes sharing the port (default: config).")
@click.option("--listen", metavar="HOST:PORT", help="Override server.listen (port 0 picks a free one).")
def serve_command(
    config_path: Path | None,
    dev: bool,
    data_dir: Path | None,
    capture_port: int | None,
    workers: int | None,
    listen: str | None,
) -> None:
    """Run the SMTP gateway in the foreground until SIGTERM or Ctrl-C."""
    source = resolve_config(config_path, dev, data_dir, capture_port)
    config = source.config
    capture = None
    if source.dev_dir is not None:
        capture = CaptureSpec("127.0.0.1", source.capture_port, source.dev_dir / "captured")
    if listen is not None:
        config = _override_listen(config, listen)
    configure_logging(config.logging, console=True if dev else None)
    supervisor = Supervisor(
        config,
        workers=workers or config.server.workers,
        console=dev or config.logging.format == "console",
        capture=capture,
        services=extra_services(config),
    )
    sys.exit(supervisor.run())


@click.command("passwd")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from one line of standard input.")
def passwd_command(from_stdin: bool) -> None:
    """Print an argon2 hash for an account's password_hash (asks twice)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        click.echo("gateway passwd: empty password refused", err=True)
        sys.exit(2)
    click.echo(hash_password(password))
