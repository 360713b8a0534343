"""Configuration loading: validation names the key, env overrides secrets, dev defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import ConfigError, dev_config, load_config, parse_config

MINIMAL = """
[upstreams.default]
host = "relay.example"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    """A file with only the default upstream is a complete configuration."""
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.upstreams["default"].host == "relay.example"
    assert config.upstreams["default"].tls == "starttls"
    assert config.server.listen_address == ("127.0.0.1", 2525)
    assert config.store.retention_days == 30


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A typo is an error naming the section and key, not a silently ignored setting."""
    with pytest.raises(ConfigError, match=r"server\.max_conections: unknown key"):
        load_config(write(tmp_path, MINIMAL + "[server]\nmax_conections = 5\n"), environ={})


def test_wrong_type_is_named(tmp_path: Path) -> None:
    """A value of the wrong type names its key."""
    with pytest.raises(ConfigError, match=r"upstreams\.default\.port"):
        load_config(write(tmp_path, '[upstreams.default]\nhost = "x"\nport = "twenty-five"\n'), environ={})


def test_missing_default_upstream(tmp_path: Path) -> None:
    """The default upstream is required."""
    with pytest.raises(ConfigError, match="upstreams"):
        load_config(write(tmp_path, "[server]\nworkers = 2\n"), environ={})


def test_route_to_unknown_upstream(tmp_path: Path) -> None:
    """A route naming an upstream that does not exist is refused at start."""
    text = MINIMAL + '[[routes]]\nprofile = "bol"\nupstream = "nope"\n'
    with pytest.raises(ConfigError, match=r"routes\[0\]\.upstream: unknown upstream 'nope'"):
        load_config(write(tmp_path, text), environ={})


def test_not_toml(tmp_path: Path) -> None:
    """A file that is not TOML gets a clear error with the file name."""
    path = write(tmp_path, "this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", environ={})


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    """Secrets may come from the environment and win over the file."""
    text = (
        '[upstreams.amazon-relay]\nhost = "smtp.example"\nusername = "u"\npassword = "file"\n'
        + MINIMAL
        + '[[accounts]]\nname = "zendesk"\nsenders = ["support@seller.example"]\n'
    )
    environ = {
        "GATEWAY_UPSTREAM_AMAZON_RELAY_PASSWORD": "from-env",
        "GATEWAY_ACCOUNT_ZENDESK_PASSWORD_HASH": "$argon2id$v=19$m=65536,t=3,p=4$abc$def",
        "GATEWAY_DATABASE_URL": "postgresql+psycopg://db/gw",
    }
    config = load_config(write(tmp_path, text), environ=environ)
    password = config.upstreams["amazon-relay"].password
    assert password is not None
    assert password.get_secret_value() == "from-env"
    account = config.account("zendesk")
    assert account is not None
    assert account.password_hash is not None
    assert account.password_hash.get_secret_value().startswith("$argon2id$")
    assert config.database_url == "postgresql+psycopg://db/gw"


def test_sender_patterns() -> None:
    """Accounts match full addresses, whole domains and the dev wildcard."""
    config = parse_config(
        {
            "upstreams": {"default": {"host": "x"}},
            "accounts": [{"name": "a", "senders": ["Support@Seller.example", "@shop.example"]}],
        },
        environ={},
    )
    account = config.account("a")
    assert account is not None
    assert account.sender_allowed("support@seller.example")
    assert account.sender_allowed("anyone@shop.example")
    assert not account.sender_allowed("support@evil.example")
    assert not account.sender_allowed("x@notshop.example")


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    """Secrets never show in a repr (and so never in a log line)."""
    text = '[upstreams.default]\nhost = "x"\nusername = "u"\npassword = "hunter2"\n'
    config = load_config(write(tmp_path, text), environ={})
    assert "hunter2" not in repr(config)


def test_dev_config(tmp_path: Path) -> None:
    """--dev needs no file: loopback clients, a capture hop and SQLite under the data dir."""
    config = dev_config(tmp_path, environ={})
    assert config.dev
    assert config.upstreams["default"].port == 2526
    assert config.database_url.startswith("sqlite:///")
    assert str(tmp_path.resolve()) in config.database_url
    assert config.admin.listen_address == ("127.0.0.1", 8025)


def test_example_config_is_valid() -> None:
    """The documented example configuration validates."""
    example = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"
    config = load_config(example, environ={"GATEWAY_UPSTREAM_DEFAULT_PASSWORD": "secret"})
    assert set(config.upstreams) == {"default", "bol"}
    assert config.routes[0].profile == "bol"


def test_cli_config_check(tmp_path: Path) -> None:
    """`gateway config check` exits 0 on a good file and 2 naming the key on a bad one."""
    runner = CliRunner()
    good = runner.invoke(main, ["config", "check", str(write(tmp_path, MINIMAL))])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(main, ["config", "check", str(write(tmp_path, MINIMAL + "[bogus]\n"))])
    assert bad.exit_code == 2
    assert "bogus: unknown key" in bad.output
