"""GatewaySMTP builds aiosmtpd's connection state itself; it must match aiosmtpd's own.

The gateway skips ``aiosmtpd.smtp.SMTP.__init__`` (which walks every member of
the connection and the handler on each connection) and sets the same attributes
from names found once per class. These tests build one connection both ways and
compare them, so an aiosmtpd upgrade that adds or renames state fails here
rather than in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import Config, parse_config
from gateway.pipeline import Pipeline
from gateway.smtp.auth import AccountDirectory, hash_password
from gateway.smtp.handler import GatewayHandler
from gateway.smtp.listener import SmtpServer
from gateway.smtp.server import GatewaySMTP
from gateway.upstream.pool import UpstreamPool
from tests.support.fakes import FakeParser, FakePolicy, FakeStore

# Objects made per connection: compared by type (and, for bound methods, by function).
PER_CONNECTION = {"_stream_reader_wr", "_strong_reader", "_closed", "_loop", "_source_traceback"}


def config(*, with_password: bool) -> Config:
    account: dict[str, Any] = {"name": "office", "networks": ["127.0.0.0/8"], "senders": ["@seller.example"]}
    if with_password:
        account["password_hash"] = hash_password("pw")
    return parse_config(
        {
            "server": {"hostname": "gw.example", "max_message_size": 123456, "smtputf8": True},
            "upstreams": {"default": {"host": "127.0.0.1"}},
            "accounts": [account],
        },
        environ={},
    )


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def both_ways(cfg: Config, loop: asyncio.AbstractEventLoop) -> tuple[GatewaySMTP, GatewaySMTP]:
    """A connection built by GatewaySMTP, and one built by aiosmtpd's constructor."""
    current = lambda: FakePolicy()  # noqa: E731
    handler = GatewayHandler(cfg, current, Pipeline(FakeParser(), current, UpstreamPool(cfg), FakeStore(), cfg))
    owner = SmtpServer(cfg, handler, AccountDirectory(cfg))
    fast = GatewaySMTP(handler, owner=owner, loop=loop)
    reference = GatewaySMTP.__new__(GatewaySMTP)
    reference.line_length_limit = cfg.server.line_length_limit
    SMTP.__init__(
        reference,
        handler,
        data_size_limit=cfg.server.max_message_size,
        enable_SMTPUTF8=cfg.server.smtputf8,
        decode_data=False,
        hostname=cfg.server.hostname,
        ident="ESMTP",
        tls_context=owner.tls_context,
        require_starttls=cfg.server.require_starttls,
        timeout=cfg.server.command_timeout,
        auth_require_tls=True,
        auth_exclude_mechanism=[] if owner.directory.offers_auth else ["PLAIN", "LOGIN"],
        loop=loop,
    )
    return fast, reference


def function_of(method: Any) -> Any:
    return getattr(method, "__func__", method)


@pytest.mark.parametrize("with_password", [True, False])
def test_fast_constructor_sets_what_aiosmtpd_sets(loop: asyncio.AbstractEventLoop, with_password: bool) -> None:
    """Every attribute aiosmtpd's __init__ sets exists, with the same value or the same kind of object."""
    fast, reference = both_ways(config(with_password=with_password), loop)
    ours, theirs = vars(fast), vars(reference)
    missing = set(theirs) - set(ours)
    assert not missing, f"aiosmtpd sets attributes the gateway's constructor does not: {sorted(missing)}"
    tables = {"_auth_methods", "_handle_hooks"}
    for name, value in theirs.items():
        if name == "_smtp_methods":  # a guarded table: compared in test_dispatch_tables_match
            continue
        if name in tables or name in PER_CONNECTION:
            assert type(ours[name]) is type(value), name
        elif callable(value) and not isinstance(value, type):
            assert function_of(ours[name]) is function_of(value), name
        elif name == "require_starttls":  # aiosmtpd stores `tls_context and flag` (None without TLS)
            assert bool(ours[name]) is bool(value)
        else:
            assert ours[name] == value, name
    assert fast._stream_reader._limit == reference._stream_reader._limit == fast.line_length_limit  # type: ignore[attr-defined]


@pytest.mark.parametrize("with_password", [True, False])
def test_dispatch_tables_match(loop: asyncio.AbstractEventLoop, with_password: bool) -> None:
    """Same commands, AUTH mechanisms (and their implementations) and handler hooks."""
    fast, reference = both_ways(config(with_password=with_password), loop)
    assert set(fast._smtp_methods.keys()) == set(reference._smtp_methods.keys())
    assert {k: function_of(v) for k, v in fast._smtp_methods.items()} == {
        k: function_of(v) for k, v in reference._smtp_methods.items()
    }
    guarded = fast._smtp_methods.get("HELP")
    assert guarded is not None
    assert guarded.__smtp_syntax__ == "HELP [command]"  # HELP reads the syntax through the guard
    assert fast._smtp_methods.get("XYZZY") is None
    assert {k: (function_of(v.method), v.is_builtin) for k, v in fast._auth_methods.items()} == {
        k: (function_of(v.method), v.is_builtin) for k, v in reference._auth_methods.items()
    }
    assert ("PLAIN" in fast._auth_methods) is with_password
    assert {k: function_of(v) for k, v in fast._handle_hooks.items()} == {
        k: function_of(v) for k, v in reference._handle_hooks.items()
    }
    assert "DATA" in fast._handle_hooks
    assert fast._ehlo_hook_ver == reference._ehlo_hook_ver


def test_command_limits_are_per_connection(loop: asyncio.AbstractEventLoop) -> None:
    """A connection's MAIL line limit is its own; aiosmtpd keeps one dict on the class."""
    cfg = config(with_password=False)
    first, _ = both_ways(cfg, loop)
    second, _ = both_ways(cfg, loop)
    first.command_size_limits["MAIL"] += 26
    assert second.command_size_limits["MAIL"] == SMTP.command_size_limit
    assert "MAIL" not in SMTP.command_size_limits or SMTP.command_size_limits is not first.command_size_limits
