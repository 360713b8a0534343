"""Console users: rows with an argon2 hash and a role (hashing is the service's job)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import Role, User, UserCredentials
from gateway.store.schema import users


def _user(row: Mapping[Any, Any]) -> User:
    return User(
        name=row["name"],
        role=Role(row["role"]),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        password_changed_at=row["password_changed_at"],
    )


def insert(conn: Connection, name: str, password_hash: str, role: Role, at: datetime) -> User:
    """Create user ``name``.

    Raises:
        ConflictError: the name is taken.
    """
    exists = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
    if exists is not None:
        raise ConflictError(name, "exists", f"user {name!r} already exists")
    conn.execute(
        users.insert().values(
            name=name, password_hash=password_hash, role=role.value, created_at=at, password_changed_at=at
        )
    )
    return get(conn, name).user


def get(conn: Connection, name: str) -> UserCredentials:
    """User ``name`` with the stored hash.

    Raises:
        NotFoundError: no such user.
    """
    row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError("user", name)
    return UserCredentials(user=_user(row), password_hash=row["password_hash"])


def select_all(conn: Connection) -> tuple[User, ...]:
    """Every user, by name."""
    return tuple(_user(r) for r in conn.execute(sa.select(users).order_by(users.c.name)).mappings())


def update(conn: Connection, name: str, values: dict[str, Any]) -> User:
    """Change columns of user ``name``.

    Raises:
        NotFoundError: no such user.
    """
    result = conn.execute(users.update().where(users.c.name == name).values(**values))
    if result.rowcount != 1:
        raise NotFoundError("user", name)
    return get(conn, name).user


def count_admins(conn: Connection) -> int:
    """Enabled users with the admin role."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(users)
            .where(users.c.role == Role.ADMIN.value, users.c.disabled.is_(False))
        ).scalar_one()
    )
