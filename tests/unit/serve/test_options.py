"""``--config``/``--dev`` resolution shared by ``gateway serve`` and the admin commands."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from gateway.config import DEV_CAPTURE_PORT
from gateway.serve.options import ConfigFailed, resolve_config


def test_dev_means_sqlite_and_capture_under_the_data_dir(tmp_path: Path) -> None:
    source = resolve_config(None, True, tmp_path / "state", None)
    assert source.dev_dir == (tmp_path / "state").resolve()
    assert source.dev_dir.is_dir()  # the server creates it
    assert source.config.database_url == f"sqlite:///{source.dev_dir / 'gateway.db'}"
    assert source.capture_port == DEV_CAPTURE_PORT
    assert source.config.upstreams["default"].port == DEV_CAPTURE_PORT


def test_dev_capture_port_is_the_upstream_of_releases(tmp_path: Path) -> None:
    source = resolve_config(None, True, tmp_path, 40123, create=False, pick_port=False)
    assert source.config.upstreams["default"].port == 40123
    assert source.config.notices.upstream == "default"


def test_admin_commands_do_not_create_an_empty_dev_store(tmp_path: Path) -> None:
    """A command run in the wrong directory says where it looked instead of showing an empty quarantine."""
    missing = tmp_path / "elsewhere"
    with pytest.raises(click.UsageError, match=f"no --dev data directory {missing}"):
        resolve_config(None, True, missing, None, create=False)
    assert not missing.exists()


def test_capture_port_zero_only_for_the_server(tmp_path: Path) -> None:
    assert resolve_config(None, True, tmp_path, 0).capture_port == 0
    with pytest.raises(click.UsageError, match="give the port it listens on"):
        resolve_config(None, True, tmp_path, 0, pick_port=False)


@pytest.mark.parametrize(("path", "dev"), [(None, False), (Path("g.toml"), True)])
def test_exactly_one_of_config_and_dev(path: Path | None, dev: bool) -> None:
    with pytest.raises(click.UsageError, match="either --config FILE or --dev"):
        resolve_config(path, dev, None, None)


def test_dev_options_without_dev_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('[upstreams.default]\nhost = "127.0.0.1"\n', encoding="utf-8")
    with pytest.raises(click.UsageError, match="only with --dev"):
        resolve_config(config, False, tmp_path, None)


def test_invalid_file_names_the_key_with_exit_status_2(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('[upstreams.default]\nhost = "127.0.0.1"\n[store]\nretention = 3\n', encoding="utf-8")
    with pytest.raises(ConfigFailed) as info:
        resolve_config(config, False, None, None)
    assert info.value.exit_code == 2
    assert "store.retention: unknown key" in info.value.format_message()
