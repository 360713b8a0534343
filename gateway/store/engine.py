"""Database engines for the two backends, and transactions that behave the same on both.

SQLite (the default, one gateway host): WAL so readers never block the writer,
``synchronous=FULL`` so a commit is on disk before the SMTP 250 (WAL with
``NORMAL`` survives a killed process but may lose the last commits on power
loss; a mail gateway promises more than that, and ``bench/store_commit.py``
measures the price), a busy timeout so concurrent writers wait instead of
failing, and foreign keys on. SQLAlchemy emits ``BEGIN`` itself (the sqlite3
module would skip it for DDL and SELECT); write transactions use
``BEGIN IMMEDIATE`` so a read-then-write transaction can never fail half-way on
a lock upgrade.

PostgreSQL (several gateways sharing one store): ``postgresql+psycopg://`` with
pre-ping, so a restarted server costs one failed check instead of a failed
message.

Both hide statement parameters in errors: they would carry message bytes and
addresses into logs.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from gateway.jsontext import dumps
from gateway.store.errors import StoreError

#: How long an SQLite writer waits for another writer before giving up (ms).
#: Longer than any single store transaction; shorter than the SMTP processing deadline.
SQLITE_BUSY_TIMEOUT_MS = 15_000

_READ_OPTION = "gateway_read_only"


def create_engine(database_url: str) -> Engine:
    """An engine for ``database_url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    Raises:
        StoreError: an unsupported URL, or an SQLite file whose directory is missing.
    """
    try:
        url = make_url(database_url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid database_url: {exc}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if url.get_driver_name() != "psycopg":
            raise StoreError(f"use postgresql+psycopg:// for PostgreSQL, not {url.drivername}://")
        return sa.create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True, json_serializer=dumps
        )
    raise StoreError(f"unsupported database {url.drivername!r}: use sqlite:/// or postgresql+psycopg://")


def _enable_wal(cursor: Any) -> None:
    """Switch the database to WAL, waiting out another process doing the same.

    Switching the journal mode needs an exclusive lock, and SQLite may answer
    "database is locked" at once, without its busy handler, when several processes
    open a new database together; so retry until the busy timeout has passed.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _sqlite_engine(url: sa.URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        # Each connection to :memory: is a different empty database; nothing would persist.
        raise StoreError("SQLite store needs a file path (sqlite:////var/lib/gateway/gateway.db)")
    path = Path(database)
    if not path.parent.is_dir():
        raise StoreError(f"SQLite store directory {path.parent} does not exist")
    engine = sa.create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True, json_serializer=dumps
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN; the driver's own
        # transaction handling skips it before DDL and SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed when the block ends, rolled back on an exception.

    On SQLite it holds the write lock from the start (``BEGIN IMMEDIATE``).
    """
    with engine.begin() as conn:
        yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction with a consistent view (a deferred ``BEGIN`` on SQLite)."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{_READ_OPTION: True})
        with conn.begin():
            yield conn
