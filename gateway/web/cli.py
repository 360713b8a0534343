"""``gateway admin``: the console served alone (a deployment separate from the SMTP gateway)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import uvicorn

from gateway.logging import configure_logging
from gateway.serve.cli import override_admin_listen
from gateway.serve.options import config_options, resolve_config


@click.command("admin")
@config_options
@click.option("--listen", metavar="HOST:PORT", help="Override admin.listen (port 0 picks a free one).")
def admin_command(
    config_path: Path | None, dev: bool, data_dir: Path | None, capture_port: int | None, listen: str | None
) -> None:
    """Serve the admin web console in the foreground until Ctrl-C or SIGTERM."""
    # Same --config/--dev resolution as `gateway serve` and the admin commands; the
    # console needs the real capture port in --dev (releases go there).
    config = resolve_config(config_path, dev, data_dir, capture_port, pick_port=False).config
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
