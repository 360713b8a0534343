"""``--config FILE`` or ``--dev``: how every command finds the gateway's configuration and state.

``gateway serve`` and the admin commands (``quarantine``, ``decisions``,
``users``) take the same options and resolve them here, so ``--dev`` means the
same thing everywhere: the embedded defaults of :func:`gateway.config.dev_config`
over the data directory ``./data`` (or ``--data-dir``), whose SQLite database the
server writes and the admin commands read, and the capture next hop on
``--capture-port`` (2526) that releases and notices go to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from gateway.config import DEV_CAPTURE_PORT, Config, ConfigError, dev_config, load_config

#: ``--dev`` keeps its state here unless ``--data-dir`` says otherwise (relative to the working directory).
DEV_DATA_DIR = Path("data")

F = TypeVar("F", bound=Callable[..., Any])


class ConfigFailed(click.ClickException):
    """The configuration file is invalid: its own message (naming every bad key), exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the message as is (it already names the file and the keys)."""
        click.echo(self.format_message(), err=True)


@dataclass(frozen=True)
class ConfigSource:
    """The configuration a command runs with, and in ``--dev`` where the embedded parts live.

    Attributes:
        config: the validated configuration.
        dev_dir: the ``--dev`` data directory (absolute), ``None`` with ``--config``.
        capture_port: the ``--dev`` capture next hop's port (0: the server picks one).
    """

    config: Config
    dev_dir: Path | None = None
    capture_port: int = DEV_CAPTURE_PORT


def config_options(func: F) -> F:
    """Add ``--config``, ``--dev``, ``--data-dir`` and ``--capture-port`` to a click command.

    The command receives ``config_path``, ``dev``, ``data_dir`` and ``capture_port``;
    pass them to :func:`resolve_config`.
    """
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            help="The TOML configuration file.",
        ),
        click.option(
            "--dev", is_flag=True, help="Embedded defaults: loopback SMTP, a capture next hop, SQLite under ./data."
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help=f"With --dev: where state goes (./{DEV_DATA_DIR}).",
        ),
        click.option(
            "--capture-port",
            type=click.IntRange(0, 65535),
            help=f"With --dev: the capture next hop's port (default {DEV_CAPTURE_PORT}).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_config(
    config_path: Path | None,
    dev: bool,
    data_dir: Path | None,
    capture_port: int | None,
    *,
    create: bool = True,
    pick_port: bool = True,
) -> ConfigSource:
    """The configuration named by the options of :func:`config_options`.

    Args:
        config_path: ``--config``.
        dev: ``--dev``.
        data_dir: ``--data-dir`` (``--dev`` only).
        capture_port: ``--capture-port`` (``--dev`` only).
        create: create the ``--dev`` data directory when missing (the server does;
            an admin command would only find an empty store there, so it refuses).
        pick_port: ``--capture-port 0`` is allowed (the server binds a free port);
            a command that connects to the capture hop needs the real port.

    Raises:
        click.UsageError: neither or both of ``--config`` and ``--dev``, a ``--dev``
            option without ``--dev``, or a missing data directory (exit status 2).
        ConfigFailed: the file is unreadable or invalid (exit status 2).
    """
    if dev == (config_path is not None):
        raise click.UsageError("give either --config FILE or --dev")
    if config_path is not None:
        if data_dir is not None or capture_port is not None:
            raise click.UsageError("--data-dir and --capture-port apply only with --dev (set them in the file)")
        try:
            return ConfigSource(load_config(config_path))
        except ConfigError as exc:
            raise ConfigFailed(str(exc)) from None
    if capture_port == 0 and not pick_port:
        raise click.UsageError("--capture-port 0 only lets the server pick a port; give the port it listens on")
    directory = (data_dir or DEV_DATA_DIR).resolve()
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise click.UsageError(
            f"no --dev data directory {directory}: run this where `gateway serve --dev` runs, or give --data-dir"
        )
    port = capture_port if capture_port is not None else DEV_CAPTURE_PORT
    try:
        # Port 0 is resolved by the supervisor once the capture hop is bound.
        config = dev_config(directory, capture_port=port or DEV_CAPTURE_PORT)
    except ConfigError as exc:
        raise ConfigFailed(str(exc)) from None
    return ConfigSource(config, directory, port)
