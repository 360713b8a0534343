"""Configuration: one TOML file, validated at start, secrets overridable from the environment.

Every section is a frozen pydantic model with ``extra="forbid"``, so a typo is an
error that names the key (``server.max_conections: unknown key``) rather than a
silently ignored setting. :func:`load_config` reads a file; :func:`dev_config`
builds the embedded defaults used by ``gateway serve --dev``.

Secrets may come from the environment instead of the file (environment wins):

=====================================  ==========================================
``GATEWAY_DATABASE_URL``               ``store.database_url``
``GATEWAY_ADMIN_SECRET_KEY``           ``admin.secret_key``
``GATEWAY_PSEUDONYM_KEY``              ``logging.pseudonym_key``
``GATEWAY_UPSTREAM_<NAME>_PASSWORD``   ``upstreams.<name>.password``
``GATEWAY_ACCOUNT_<NAME>_PASSWORD_HASH``  ``accounts[name=<name>].password_hash``
=====================================  ==========================================

``<NAME>`` is the upstream or account name upper-cased with ``-`` turned into ``_``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from gateway.eventloop import LoopKind

#: Where the shipped policies live (``policies/`` next to the package).
SHIPPED_POLICIES = Path(__file__).resolve().parent.parent / "policies"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration is invalid; the message names the file and every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _host_port(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} must be HOST:PORT, got {value!r}")
    # An empty host (":2525") means every interface, as in Postfix's inet_interfaces = all.
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104


class ServerConfig(_Section):
    """The SMTP listener and its limits."""

    listen: str = "127.0.0.1:2525"
    hostname: str = Field(default_factory=socket.getfqdn)
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # Largest message announced in EHLO SIZE (RFC 1870). Profiles set lower limits
    # per marketplace (Amazon: 10 MB); aiosmtpd buffers DATA in memory, so keep it modest.
    max_message_size: Annotated[int, Field(ge=1024)] = 25 * 1024 * 1024
    # RFC 5321 4.5.3.1.8 asks servers to accept at least 100 recipients; a
    # helpdesk reply has one, so a lower cap is a deliberate local policy.
    max_recipients: Annotated[int, Field(ge=1)] = 50
    max_connections: Annotated[int, Field(ge=1)] = 200
    max_connections_per_client: Annotated[int, Field(ge=1)] = 20
    # RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for the next command.
    command_timeout: Annotated[float, Field(gt=0)] = 300.0
    # Whole-DATA deadline; RFC 5321 4.5.3.2.5/6 give clients 3-10 minutes per phase.
    data_timeout: Annotated[float, Field(gt=0)] = 600.0
    # Deadline for parse + evaluate + relay/quarantine before we answer 451.
    # Postfix's smtpd_proxy_timeout is 100 s; helpdesks time out around 120 s.
    processing_timeout: Annotated[float, Field(gt=0)] = 90.0
    # RFC 5321 4.5.3.1.6: 1000 octets per text line including CRLF (aiosmtpd counts 1001).
    line_length_limit: Annotated[int, Field(ge=1001)] = 1001
    shutdown_grace: Annotated[float, Field(ge=0)] = 30.0
    # Seconds to wait before the greeting; a client that talks first is refused
    # (554 5.5.0), like Postfix's "sleep" + reject_unauth_pipelining. 0 = off.
    greet_pause: Annotated[float, Field(ge=0, le=30)] = 0.0
    require_starttls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    smtputf8: bool = True
    # The workers' event loop: uvloop (libuv) spends less CPU per connection than
    # the standard library's selector loop; "asyncio" is the fallback.
    event_loop: LoopKind = "uvloop"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        _host_port(value, "listen")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.require_starttls and self.tls_cert is None:
            raise ValueError("require_starttls needs tls_cert and tls_key")
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        """``listen`` split into host and port."""
        return _host_port(self.listen, "listen")


class AccountConfig(_Section):
    """A sending account: who may relay and which sender addresses it owns.

    A client is this account when it authenticates with ``name`` and the password
    matching ``password_hash`` (argon2, made with ``gateway passwd``), or when it
    connects from one of ``networks``. ``senders`` lists the addresses MAIL FROM
    and the From header must match: full addresses, ``@domain`` for a whole
    domain, or ``*`` for any (only sensible in ``--dev``).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    password_hash: SecretStr | None = None
    networks: list[IPNetwork] = []
    senders: Annotated[list[str], Field(min_length=1)]

    @field_validator("senders")
    @classmethod
    def _check_senders(cls, value: list[str]) -> list[str]:
        for sender in value:
            if sender != "*" and "@" not in sender:
                raise ValueError(f"sender {sender!r} must be an address, @domain or *")
        return [s.lower() for s in value]

    def sender_allowed(self, address: str) -> bool:
        """Whether ``address`` is one of this account's authorised senders."""
        address = address.lower()
        for sender in self.senders:
            if sender == "*" or sender == address:
                return True
            if sender.startswith("@") and address.endswith(sender):
                return True
        return False


class UpstreamConfig(_Section):
    """A next hop and its connection pool."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    verify_tls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    # aiosmtplib's timeout is per socket operation (connect, each command).
    timeout: Annotated[float, Field(gt=0)] = 60.0
    pool_size: Annotated[int, Field(ge=1, le=256)] = 4
    # Recycle a connection after this many messages or this long idle.
    max_messages_per_connection: Annotated[int, Field(ge=1)] = 100
    idle_timeout: Annotated[float, Field(gt=0)] = 60.0
    helo_name: str | None = None

    @model_validator(mode="after")
    def _check_auth(self) -> UpstreamConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError(
                "username and password must be given together (the password may come from "
                "GATEWAY_UPSTREAM_<NAME>_PASSWORD)"
            )
        return self


class RouteConfig(_Section):
    """Adds relay domains to a marketplace profile and/or picks its upstream.

    The shipped profiles already know their marketplace's domains; a route is
    needed for profiles whose relay domains are site-specific (bol, walmart) or
    to send a marketplace's mail through a different upstream.
    """

    profile: str
    domains: list[str] = []
    upstream: str = "default"


class StoreConfig(_Section):
    """Decision log, quarantine and per-order state."""

    # None means SQLite at <data_dir>/gateway.db.
    database_url: SecretStr | None = None
    retention_days: Annotated[int, Field(ge=1)] = 30
    # Per-order and per-buyer state (review.repeat, the proactive window and cap) is
    # purged after this many days. It must outlast the longest window/period of any
    # profile, or those rules forget too early: a year covers every shipped profile.
    state_retention_days: Annotated[int, Field(ge=1)] = 365


class PolicyConfig(_Section):
    """Where policies come from and how they act."""

    path: Path = SHIPPED_POLICIES
    # Site overrides merged over the shipped files (like rspamd's local.d).
    local_path: Path | None = None
    # Log what would happen without acting (M365 "Audit" mode).
    monitor: bool = False


class ParserConfig(_Section):
    """Limits and the worker pool for parsing and attachment extraction."""

    pool_workers: Annotated[int, Field(ge=0, le=64)] = 2
    attachment_timeout: Annotated[float, Field(gt=0)] = 10.0
    attachment_memory_mb: Annotated[int, Field(ge=64)] = 512
    max_parts: Annotated[int, Field(ge=1)] = 1000
    max_depth: Annotated[int, Field(ge=1)] = 10
    max_archive_entries: Annotated[int, Field(ge=1)] = 1000
    max_archive_depth: Annotated[int, Field(ge=1)] = 3
    max_decompressed_bytes: Annotated[int, Field(ge=1024)] = 100 * 1024 * 1024
    max_text_chars: Annotated[int, Field(ge=1024)] = 2_000_000


class LoggingConfig(_Section):
    """structlog output."""

    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"
    # Replace recipient addresses in logs by a keyed hash (HMAC-SHA256, first 16 hex).
    pseudonymize_recipients: bool = False
    pseudonym_key: SecretStr | None = None

    @model_validator(mode="after")
    def _check_key(self) -> LoggingConfig:
        if self.pseudonymize_recipients and self.pseudonym_key is None:
            raise ValueError("pseudonymize_recipients needs pseudonym_key (or GATEWAY_PSEUDONYM_KEY)")
        return self


class AdminConfig(_Section):
    """The admin web console."""

    enabled: bool = True
    listen: str = "127.0.0.1:8025"
    # Signs session cookies; generated into <data_dir>/admin.key when not given.
    secret_key: SecretStr | None = None
    # Send cookies only over HTTPS; turn off only behind nothing (``--dev`` on loopback).
    secure_cookies: bool = True
    session_hours: Annotated[float, Field(gt=0)] = 8.0

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        _host_port(value, "admin.listen")
        return value

    @property
    def listen_address(self) -> tuple[str, int]:
        """``listen`` split into host and port."""
        return _host_port(self.listen, "admin.listen")


class NoticeConfig(_Section):
    """Messages the gateway itself sends to a sender (DSNs, reject notices)."""

    upstream: str = "default"
    from_address: str = ""  # empty: postmaster@<server.hostname>


class MetricsConfig(_Section):
    """Prometheus metrics and health endpoint."""

    listen: str | None = None


class Config(_Section):
    """The whole gateway configuration."""

    data_dir: Path = Path("/var/lib/gateway")
    server: ServerConfig = ServerConfig()
    accounts: list[AccountConfig] = []
    upstreams: dict[str, UpstreamConfig]
    routes: list[RouteConfig] = []
    store: StoreConfig = StoreConfig()
    policy: PolicyConfig = PolicyConfig()
    parser: ParserConfig = ParserConfig()
    logging: LoggingConfig = LoggingConfig()
    admin: AdminConfig = AdminConfig()
    notices: NoticeConfig = NoticeConfig()
    metrics: MetricsConfig = MetricsConfig()
    # Set by dev_config(): an embedded capture next hop is started by `serve --dev`.
    dev: bool = False

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        if "default" not in self.upstreams:
            raise ValueError("upstreams.default is required")
        for i, route in enumerate(self.routes):
            if route.upstream not in self.upstreams:
                raise ValueError(f"routes[{i}].upstream: unknown upstream {route.upstream!r}")
        if self.notices.upstream not in self.upstreams:
            raise ValueError(f"notices.upstream: unknown upstream {self.notices.upstream!r}")
        names = [a.name for a in self.accounts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"accounts: duplicate name {duplicates[0]!r}")
        return self

    def account(self, name: str) -> AccountConfig | None:
        """The account called ``name``, if configured."""
        for account in self.accounts:
            if account.name == name:
                return account
        return None

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the store (SQLite under ``data_dir`` by default)."""
        if self.store.database_url is not None:
            return self.store.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def notice_from(self) -> str:
        """Envelope and header sender of the gateway's own notices."""
        return self.notices.from_address or f"postmaster@{self.server.hostname}"


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """Overlay secrets from the environment on the raw TOML data."""
    if url := environ.get("GATEWAY_DATABASE_URL"):
        raw.setdefault("store", {})["database_url"] = url
    if key := environ.get("GATEWAY_ADMIN_SECRET_KEY"):
        raw.setdefault("admin", {})["secret_key"] = key
    if key := environ.get("GATEWAY_PSEUDONYM_KEY"):
        raw.setdefault("logging", {})["pseudonym_key"] = key
    upstreams = raw.get("upstreams")
    if isinstance(upstreams, dict):
        for name, section in upstreams.items():
            secret = environ.get(f"GATEWAY_UPSTREAM_{_env_name(name)}_PASSWORD")
            if secret and isinstance(section, dict):
                section["password"] = secret
    accounts = raw.get("accounts")
    if isinstance(accounts, list):
        for section in accounts:
            if isinstance(section, dict) and isinstance(section.get("name"), str):
                secret = environ.get(f"GATEWAY_ACCOUNT_{_env_name(section['name'])}_PASSWORD_HASH")
                if secret:
                    section["password_hash"] = secret
    return raw


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<config>", environ: dict[str, str] | None = None) -> Config:
    """Validate already-loaded TOML data (plus environment secrets) into a :class:`Config`.

    Raises:
        ConfigError: naming ``source`` and every invalid key.
    """
    data = _apply_env(raw, dict(os.environ) if environ is None else environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration\n{_describe(exc)}") from None


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """Read and validate the TOML file at ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or invalid (the message names the key).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, str(path), environ)


#: Port of the embedded capture next hop started by ``serve --dev``.
DEV_CAPTURE_PORT = 2526


def dev_config(
    data_dir: Path, environ: dict[str, str] | None = None, *, capture_port: int = DEV_CAPTURE_PORT
) -> Config:
    """Embedded defaults for ``gateway serve --dev``: no file needed.

    SMTP on 127.0.0.1:2525 open to loopback clients for any sender, an embedded
    capture next hop on 127.0.0.1:``capture_port`` (2526) writing to
    ``<data_dir>/captured/``, SQLite under ``data_dir``, the shipped policies,
    the console on 127.0.0.1:8025.
    """
    raw: dict[str, Any] = {
        "dev": True,
        "data_dir": str(data_dir),
        "server": {"listen": "127.0.0.1:2525", "hostname": "gateway.localhost", "workers": 1},
        "accounts": [{"name": "dev", "networks": ["127.0.0.0/8", "::1/128"], "senders": ["*"]}],
        "upstreams": {"default": {"host": "127.0.0.1", "port": capture_port, "tls": "none", "pool_size": 2}},
        "logging": {"format": "console"},
        "admin": {"listen": "127.0.0.1:8025", "secure_cookies": False},
    }
    return parse_config(raw, "--dev", environ)
