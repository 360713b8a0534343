"""Schema migrations: upgrade in place with data, concurrent openers, schema equals the code's tables."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store import SchemaError, open_store
from gateway.store.engine import create_engine, write
from gateway.store.migrate import current_revision, head_revision, upgrade
from gateway.store.records import DecisionQuery, QuarantineStatus, Role
from gateway.store.schema import metadata
from tests.storekit import NOW, backend_url


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    """Running every migration yields the tables, columns, indexes and keys schema.py declares."""
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_first_revision_with_rows_upgrades_in_place(database_url: str) -> None:
    """A database created by revision 0001, holding a quarantined message, upgrades to head intact."""
    engine = create_engine(database_url)
    try:
        upgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        old = NOW - timedelta(days=2)
        with write(engine) as conn:
            # Written with plain SQL in the 0001 layout: the code's tables are the newest layout.
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (id, queue_id, decided_at, account, recipients, profile, action, "
                    "outcome, subject, size, durations, refused, signals, order_ids, buyer) VALUES "
                    "(1, 'OLD1', :at, 'acme', 'buyer@marketplace.amazon.de', 'amazon', 'quarantine', "
                    "'quarantined', 'Old subject', 5, '{}', '{}', '[]', '[\"302-1\"]', 'buyer@marketplace.amazon.de')"
                ),
                {"at": old if engine.dialect.name == "postgresql" else old.strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO findings (decision_id, position, rule, category, action, language, evidence) "
                    "VALUES (1, 0, 'review.removal', 'review.removal', 'quarantine', 'en', 'remove the review')"
                )
            )
            conn.execute(
                sa.text("INSERT INTO quarantine (id, decision_id, created_at, status) VALUES ('OLD1', 1, :at, 'held')"),
                {"at": old if engine.dialect.name == "postgresql" else old.strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
            conn.execute(
                sa.text("INSERT INTO quarantine_messages (quarantine_id, sha256, raw) VALUES ('OLD1', 'x', :raw)"),
                {"raw": b"Subject: Old subject\r\n\r\nbody\r\n"},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO state_events (kind, key, at, queue_id) VALUES ('review_request', '302-1', :at, 'OLD1')"
                ),
                {"at": old if engine.dialect.name == "postgresql" else old.strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
    finally:
        engine.dispose()

    store = open_store(database_url)
    try:
        record = store.get_quarantined("OLD1")
        assert record.status is QuarantineStatus.HELD
        assert record.created_at == old
        assert record.verdict.findings[0].evidence == "remove the review"
        assert record.verdict.order_ids == ("302-1",)
        assert record.rescan is None
        assert store.raw("OLD1") == b"Subject: Old subject\r\n\r\nbody\r\n"
        assert store.list_decisions(DecisionQuery()).items[0].decision.subject == "Old subject"
        # The new revision's table is usable at once.
        from gateway.store.records import AuditEntry

        store.add_user("root", "hash", Role.ADMIN, AuditEntry("cli", "user_add", "root", NOW))
        assert [u.name for u in store.list_users()] == ["root"]
        # State from 0001 still answers review.repeat, and the 0003 purge index finds it by age.
        assert store.load_state(["302-1"], None, NOW).review_requested("302-1") == old
        assert store.purge_state(old, AuditEntry("cli", "purge", "", NOW)) == 0
        assert store.purge_state(NOW, AuditEntry("cli", "purge", "", NOW)) == 1
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_a_newer_gateway_is_refused(database_url: str) -> None:
    """A schema revision this code does not know stops the store with a clear message."""
    open_store(database_url).close()
    engine = create_engine(database_url)
    try:
        with write(engine) as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaError, match="newer than this gateway knows"):
        open_store(database_url)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_several_processes_opening_a_new_database_at_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """Four processes opening the same empty database at the same moment all succeed, schema at head."""
    url = backend_url(request, backend, str(tmp_path))
    code = (
        "import sys, time\n"
        "from gateway.store import open_store\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "open_store(sys.argv[1]).close()\n"
    )
    import time

    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", code, url, start], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = create_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
