"""``gateway serve`` and ``gateway passwd``."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from gateway.config import AdminConfig, Config, ServerConfig
from gateway.logging import configure_logging
from gateway.serve.asgi import AsgiService
from gateway.serve.options import config_options, resolve_config
from gateway.serve.supervisor import CaptureSpec, Service, Supervisor
from gateway.smtp.auth import hash_password


def _reload_workers() -> None:
    """After a console policy reload: SIGHUP to ourselves, which the supervisor forwards to the workers."""
    os.kill(os.getpid(), signal.SIGHUP)


def extra_services(config: Config) -> list[Service]:
    """Web surfaces served by the supervisor next to the SMTP workers: the admin console on ``admin.listen``."""
    if not config.admin.enabled:
        return []
    from gateway.web.runtime import build_app  # the console's imports only when it is served

    app = build_app(config, after_reload=[_reload_workers])
    return [AsgiService("admin", app, *config.admin.listen_address)]


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 right now (for ``--capture-port 0``, which the console must know)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _override_listen(config: Config, listen: str) -> Config:
    try:
        server = ServerConfig.model_validate({**config.server.model_dump(), "listen": listen})
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"], param_hint="--listen") from None
    return config.model_copy(update={"server": server})


def override_admin_listen(config: Config, listen: str) -> Config:
    """``config`` with ``admin.listen`` replaced (``--admin-listen``); a bad value is a usage error."""
    try:
        admin = AdminConfig.model_validate({**config.admin.model_dump(), "listen": listen})
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"], param_hint="--admin-listen") from None
    return config.model_copy(update={"admin": admin})


@click.command("serve")
@config_options
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes sharing the port (default: config).")
@click.option("--listen", metavar="HOST:PORT", help="Override server.listen (port 0 picks a free one).")
@click.option(
    "--admin-listen", metavar="HOST:PORT", help="Override admin.listen, the console (port 0 picks a free one)."
)
def serve_command(
    config_path: Path | None,
    dev: bool,
    data_dir: Path | None,
    capture_port: int | None,
    workers: int | None,
    listen: str | None,
    admin_listen: str | None,
) -> None:
    """Run the SMTP gateway in the foreground until SIGTERM or Ctrl-C."""
    source = resolve_config(config_path, dev, data_dir, capture_port)
    config = source.config
    capture = None
    if source.dev_dir is not None:
        # The console relays releases to the capture hop too, so port 0 is resolved now.
        port = source.capture_port or free_loopback_port()
        if port != config.upstreams["default"].port:
            default = config.upstreams["default"].model_copy(update={"port": port})
            config = config.model_copy(update={"upstreams": {**config.upstreams, "default": default}})
        capture = CaptureSpec("127.0.0.1", port, source.dev_dir / "captured")
    if listen is not None:
        config = _override_listen(config, listen)
    if admin_listen is not None:
        config = override_admin_listen(config, admin_listen)
    configure_logging(config.logging, console=True if dev else None)
    try:
        services = extra_services(config)
    except Exception as exc:  # bad policies or an unreachable database: say so and stop, as a worker would
        click.echo(f"gateway serve: the admin console cannot start: {exc}", err=True)
        sys.exit(1)
    supervisor = Supervisor(
        config,
        workers=workers or config.server.workers,
        console=dev or config.logging.format == "console",
        capture=capture,
        services=services,
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
