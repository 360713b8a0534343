"""``gateway admin``: the console served alone (a deployment separate from the SMTP gateway)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import uvicorn

from gateway.config import ConfigError, dev_config, load_config
from gateway.logging import configure_logging
from gateway.serve.cli import override_admin_listen


@click.command("admin")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="The TOML configuration file."
)
@click.option(
    "--dev", is_flag=True, help="The embedded --dev defaults (SQLite under ./data, console on 127.0.0.1:8025)."
)
@click.option("--listen", metavar="HOST:PORT", help="Override admin.listen (port 0 picks a free one).")
@click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), help="With --dev: where state goes (./data)."
)
def admin_command(config_path: Path | None, dev: bool, listen: str | None, data_dir: Path | None) -> None:
    """Serve the admin web console in the foreground until Ctrl-C or SIGTERM."""
    if dev == (config_path is not None):
        raise click.UsageError("give either --config FILE or --dev")
    try:
        if dev:
            directory = (data_dir or Path("data")).resolve()
            directory.mkdir(parents=True, exist_ok=True)
            config = dev_config(directory)
        else:
            assert config_path is not None
            config = load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if listen is not None:
        config = override_admin_listen(config, listen)
    configure_logging(config.logging, console=True if dev else None)
    from gateway.web.runtime import build_app

    try:
        app = build_app(config)
    except Exception as exc:  # bad policies or an unreachable database: one clear line, no traceback
        click.echo(f"gateway admin: cannot start: {exc}", err=True)
        sys.exit(1)
    host, port = config.admin.listen_address
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
