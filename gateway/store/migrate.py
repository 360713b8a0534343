"""Bring a database to the schema this code needs, safely from several processes at once.

Alembic runs inside one transaction that first takes a lock: on PostgreSQL a
transaction-scoped advisory lock, on SQLite the write lock (``BEGIN
IMMEDIATE``). A second gateway starting at the same moment waits, then finds
the schema current and does nothing. DDL is transactional on both backends, so
a failed upgrade leaves the previous schema and its data as they were.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from gateway.store.engine import read, write
from gateway.store.errors import SchemaError

#: pg_advisory_xact_lock key for schema upgrades (any fixed 64-bit number; "gwschema").
_PG_LOCK_KEY = 0x6777736368656D61


def alembic_config() -> AlembicConfig:
    """The Alembic configuration pointing at the migrations shipped in this package."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("gateway.store") / "migrations"))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with read(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest).

    Raises:
        SchemaError: the database is at a revision this code does not know (a newer
            gateway migrated it), or a migration failed.
    """
    config = alembic_config()
    with write(engine) as conn:
        _lock(conn)
        known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in known:
            raise SchemaError(
                f"the database schema is at revision {current}, newer than this gateway knows "
                f"(newest here: {head_revision()}); run the newer gateway version"
            )
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise SchemaError(f"schema upgrade failed: {exc}") from exc


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    # SQLite: the write() transaction already holds the database write lock.
