"""Connection counting and account resolution (networks, argon2 AUTH)."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.smtp.auth import AccountDirectory, hash_password
from gateway.smtp.limits import ConnectionLimiter, Refusal


def test_limiter_total_and_per_client() -> None:
    """The per-client limit applies per address; the total limit applies to all."""
    limiter = ConnectionLimiter(max_total=3, max_per_client=2)
    assert limiter.admit("10.0.0.1") is None
    assert limiter.admit("10.0.0.1") is None
    assert limiter.admit("10.0.0.1") is Refusal.PER_CLIENT
    assert limiter.admit("10.0.0.2") is None
    assert limiter.admit("10.0.0.3") is Refusal.TOTAL
    limiter.release("10.0.0.1")
    assert limiter.admit("10.0.0.3") is None
    assert limiter.total == 3


def directory(password_hash: str) -> AccountDirectory:
    config = parse_config(
        {
            "upstreams": {"default": {"host": "x"}},
            "accounts": [
                {"name": "office", "networks": ["10.0.0.0/8"], "senders": ["@seller.example"]},
                {"name": "branch", "networks": ["10.1.0.0/16"], "senders": ["@branch.example"]},
                {"name": "zendesk", "password_hash": password_hash, "senders": ["support@seller.example"]},
            ],
        },
        environ={},
    )
    return AccountDirectory(config)


def test_network_account_most_specific_wins() -> None:
    """A client address maps to the account with the most specific network."""
    d = directory(hash_password("pw"))
    office = d.by_address("10.9.9.9")
    branch = d.by_address("10.1.2.3")
    assert office is not None
    assert office.name == "office"
    assert branch is not None
    assert branch.name == "branch"
    assert d.by_address("192.0.2.1") is None
    assert d.by_address("::1") is None


async def test_authenticate_with_argon2_hash() -> None:
    """The right password for a known name is its account; anything else is None."""
    d = directory(hash_password("correct horse"))
    account = await d.authenticate("zendesk", "correct horse")
    assert account is not None
    assert account.name == "zendesk"
    assert await d.authenticate("zendesk", "wrong") is None
    assert await d.authenticate("nobody", "correct horse") is None
    assert await d.authenticate("office", "") is None  # no password: cannot AUTH
    assert d.offers_auth


def test_hash_is_argon2id() -> None:
    """Hashes made for `gateway passwd` are argon2id and salted (two hashes of one password differ)."""
    first, second = hash_password("x"), hash_password("x")
    assert first.startswith("$argon2id$")
    assert first != second
