"""Console users: password rules and argon2 hashing around the store's user rows.

The review service delegates here; hashing (deliberately slow) runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime

import argon2
import structlog

from gateway.admin.results import InputError
from gateway.store import ConflictError, NotFoundError
from gateway.store.records import AuditEntry, AuditResult, Role, User
from gateway.store.sql import SqlStore

log = structlog.get_logger(__name__)

#: NIST SP 800-63B-4 section 3.1.1.2: a password that is the only factor must be at
#: least 15 characters, and verifiers should accept at least 64.
MIN_PASSWORD_LENGTH = 15
MAX_PASSWORD_LENGTH = 1024

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_hasher = argon2.PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as much time as a wrong password."""
    return _hasher.hash("not a real password, only here to spend the same time")


def normalise_password(password: str) -> str:
    """NFKC-normalise (as NIST advises) and check the length rules.

    Raises:
        InputError: too short or too long.
    """
    password = unicodedata.normalize("NFKC", password)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_name(name: str) -> str:
    """A valid user name, or :class:`InputError` saying what is allowed."""
    if not USER_NAME.match(name):
        raise InputError(f"invalid user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


def parse_role(role: str | Role) -> Role:
    """A role from its name, or :class:`InputError` listing the roles."""
    try:
        return Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(r.value for r in Role)}") from None


class UserManager:
    """Create, change, disable and authenticate console users; every change is audited."""

    def __init__(self, store: SqlStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def _entry(self, actor: str, action: str, target: str, detail: str = "") -> AuditEntry:
        return AuditEntry(actor=actor, action=action, target=target, at=self._clock(), detail=detail)

    async def add(self, name: str, password: str, role: str | Role, *, actor: str) -> User:
        """Create user ``name`` (raises ``InputError``, or ``ConflictError`` if the name exists)."""
        name = check_name(name)
        parsed_role = parse_role(role)
        hashed = await asyncio.to_thread(_hasher.hash, normalise_password(password))
        user = await asyncio.to_thread(
            self._store.add_user, name, hashed, parsed_role, self._entry(actor, "user_add", name, parsed_role.value)
        )
        log.info("user_added", user=name, role=parsed_role.value, actor=actor)
        return user

    async def all(self) -> tuple[User, ...]:
        """Every user, by name."""
        return await asyncio.to_thread(self._store.list_users)

    async def _guard_last_admin(self, name: str) -> None:
        creds = await asyncio.to_thread(self._store.credentials, name)
        is_admin = creds.user.role is Role.ADMIN and not creds.user.disabled
        if is_admin and await asyncio.to_thread(self._store.count_admins) <= 1:
            raise ConflictError(name, "admin", f"{name} is the last enabled admin; make another admin first")

    async def set_role(self, name: str, role: str | Role, *, actor: str) -> User:
        """Change ``name``'s role (the last enabled admin cannot be demoted)."""
        parsed_role = parse_role(role)
        if parsed_role is not Role.ADMIN:
            await self._guard_last_admin(name)
        entry = self._entry(actor, "user_role", name, parsed_role.value)
        return await asyncio.to_thread(self._store.update_user, name, {"role": parsed_role.value}, entry)

    async def set_password(self, name: str, password: str, *, actor: str) -> User:
        """Replace ``name``'s password."""
        hashed = await asyncio.to_thread(_hasher.hash, normalise_password(password))
        values = {"password_hash": hashed, "password_changed_at": self._clock()}
        return await asyncio.to_thread(self._store.update_user, name, values, self._entry(actor, "user_password", name))

    async def set_disabled(self, name: str, disabled: bool, *, actor: str) -> User:
        """Disable (or enable again) ``name``; the last enabled admin cannot be disabled."""
        if disabled:
            await self._guard_last_admin(name)
        entry = self._entry(actor, "user_disable" if disabled else "user_enable", name)
        return await asyncio.to_thread(self._store.update_user, name, {"disabled": disabled}, entry)

    async def authenticate(self, name: str, password: str, *, source: str = "") -> User | None:
        """The user if ``password`` is right and the account enabled, else ``None``; audited either way.

        Takes about the same time whether or not the user exists.
        """
        password = unicodedata.normalize("NFKC", password)[:MAX_PASSWORD_LENGTH]
        try:
            creds = await asyncio.to_thread(self._store.credentials, name)
        except NotFoundError:
            await asyncio.to_thread(_verify, _dummy_hash(), password)
            await self._login_audit(name, AuditResult.REFUSED, "unknown user", source)
            return None
        if not await asyncio.to_thread(_verify, creds.password_hash, password):
            await self._login_audit(name, AuditResult.REFUSED, "wrong password", source)
            return None
        if creds.user.disabled:
            await self._login_audit(name, AuditResult.REFUSED, "account disabled", source)
            return None
        values: dict[str, object] = {"last_login_at": self._clock()}
        if _hasher.check_needs_rehash(creds.password_hash):
            values["password_hash"] = await asyncio.to_thread(_hasher.hash, password)
        detail = f"from {source}" if source else ""
        entry = AuditEntry(actor=name, action="login", target=name, at=self._clock(), detail=detail)
        return await asyncio.to_thread(self._store.update_user, name, values, entry)

    async def _login_audit(self, name: str, result: AuditResult, why: str, source: str) -> None:
        detail = f"{why} from {source}" if source else why
        entry = AuditEntry(actor=name[:128], action="login", target=name[:255], at=self._clock(), result=result)
        await asyncio.to_thread(self._store.write_audit, _with_detail(entry, detail))
        log.warning("login_refused", user=name, reason=why, source=source)


def _with_detail(entry: AuditEntry, detail: str) -> AuditEntry:
    return AuditEntry(entry.actor, entry.action, entry.target, entry.at, entry.reason, entry.result, detail)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
