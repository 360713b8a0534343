"""Who a client is: accounts by network or by SMTP AUTH with argon2 password hashes.

The gateway is not an open relay. A client is an account when it connects from
one of the account's ``networks`` or authenticates (AUTH PLAIN/LOGIN, offered
only over TLS) with the account's name and a password matching its argon2
hash. Verification is deliberately slow (about 0.15 s with argon2-cffi's
defaults), so it runs in a thread, and an unknown name is checked against a
dummy hash so the reply time does not reveal which names exist.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.config import AccountConfig, Config

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``accounts.password_hash`` (``gateway passwd``)."""
    return _HASHER.hash(password)


class AccountDirectory:
    """Maps a client address or AUTH credentials to a configured account."""

    def __init__(self, config: Config) -> None:
        self._accounts = list(config.accounts)
        self._by_name = {a.name: a for a in self._accounts if a.password_hash is not None}

    @property
    def offers_auth(self) -> bool:
        """Some account has a password, so AUTH is worth advertising."""
        return bool(self._by_name)

    def by_address(self, address: str) -> AccountConfig | None:
        """The account whose networks contain ``address`` (the most specific one wins)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        best: tuple[int, AccountConfig] | None = None
        for account in self._accounts:
            for network in account.networks:
                inside = ip.version == network.version and ip in network
                if inside and (best is None or network.prefixlen > best[0]):
                    best = (network.prefixlen, account)
        return best[1] if best else None

    async def authenticate(self, username: str, password: str) -> AccountConfig | None:
        """The account if ``password`` matches its hash, else ``None`` (argon2 in a thread)."""
        account = self._by_name.get(username)
        stored = account.password_hash.get_secret_value() if account and account.password_hash else _dummy_hash()
        ok = await asyncio.to_thread(_verify, stored, password)
        return account if ok and account is not None else None


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, to spend the same time (made once, lazily)."""
    return hash_password("not a password")


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
