"""The ``gateway`` command line.

Each area keeps its commands in its own module and registers them here, so
this file stays a table of contents.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway import __version__
from gateway.config import ConfigError, load_config
from gateway.policy.cli import check, policies_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Outbound SMTP gateway enforcing marketplace buyer-messaging policy."""


@main.group()
def config() -> None:
    """Work with the configuration file."""


@config.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def config_check(path: Path) -> None:
    """Validate the configuration file PATH and report every invalid key."""
    try:
        load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"{path}: ok")


from gateway.mime.cli import parse_command  # noqa: E402

main.add_command(parse_command)
main.add_command(check)
main.add_command(policies_group)

from gateway.serve.cli import passwd_command, serve_command  # noqa: E402

main.add_command(serve_command)
main.add_command(passwd_command)

from gateway.web.cli import admin_command  # noqa: E402

main.add_command(admin_command)
from gateway.admin.cli import decisions_group, quarantine_group, users_group  # noqa: E402

for _group in (quarantine_group, decisions_group, users_group):
    main.add_command(_group)
