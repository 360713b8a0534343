"""Fixtures and builders for tests of the store and the review service.

``database_url`` runs a test on SQLite and on PostgreSQL (127.0.0.1:5432, database
``test``; override with ``GATEWAY_TEST_POSTGRES``). Each PostgreSQL test gets its own
schema named after this session, dropped when the session ends, so concurrent runs
never collide. PostgreSQL tests are skipped, with the reason, only when no server answers.

Import the fixtures into a test module: ``from tests.storekit import database_url, store``.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url

from gateway.model import Action, Category, Decision, Envelope, Finding, Signal, Verdict
from gateway.store import SqlStore, open_store

PG_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresSchemas:
    """Hands out fresh schemas in the test database; ``reason`` says why none can be made."""

    base_url: str
    reason: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    created: list[str] = field(default_factory=list)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def available(self) -> bool:
        return not self.reason

    def new_url(self) -> str:
        """The URL of a new empty schema (the store creates its tables there)."""
        name = f"gwtest_{self.token}_{next(self._counter)}"
        with psycopg.connect(_conninfo(self.base_url), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        self.created.append(name)
        return str(make_url(self.base_url).update_query_dict({"options": f"-csearch_path={name}"}))

    def drop_all(self) -> None:
        if not self.created:
            return
        with psycopg.connect(_conninfo(self.base_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresSchemas]:
    """Schemas in the PostgreSQL test database, or the reason there is none."""
    schemas = PostgresSchemas(PG_URL)
    try:
        with psycopg.connect(_conninfo(PG_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        schemas.reason = f"no PostgreSQL server answers at {make_url(PG_URL).render_as_string()}: {exc}"
    yield schemas
    if schemas.available:
        schemas.drop_all()


def backend_url(request: pytest.FixtureRequest, backend: str, tmp_dir: str) -> str:
    """A fresh database URL on ``backend`` (``sqlite`` or ``postgresql``)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir}/gateway.db"
    schemas: PostgresSchemas = request.getfixturevalue("postgres")
    if not schemas.available:
        pytest.skip(schemas.reason)
    return schemas.new_url()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty database on each backend."""
    return backend_url(request, request.param, str(tmp_path_factory.mktemp("db")))


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """An opened store on a fresh database (each backend)."""
    opened = open_store(database_url)
    yield opened
    opened.close()


_ids = itertools.count(1)


def finding(
    rule: str = "review.removal",
    category: Category = Category.REVIEW_REMOVAL,
    action: Action = Action.QUARANTINE,
    *,
    evidence: str = "please remove your review",
    language: str | None = "en",
    location: str = "text/plain",
    monitor: bool = False,
) -> Finding:
    """A finding with plausible defaults."""
    return Finding(
        rule=rule,
        category=category,
        action=action,
        description=f"{rule}: the agent-facing description",
        evidence=evidence,
        location=location,
        language=language,
        monitor=monitor,
    )


def decision(
    queue_id: str | None = None,
    *,
    action: Action = Action.QUARANTINE,
    findings: tuple[Finding, ...] | None = None,
    decided_at: datetime = NOW,
    account: str | None = "acme",
    mail_from: str = "support@seller.example",
    rcpt: tuple[str, ...] = ("a1b2c3@marketplace.amazon.de",),
    subject: str = "Your order 302-1234567-1234567",
    profile: str = "amazon",
    outcome: str = "quarantined",
    size: int = 321,
    signals: frozenset[Signal] = frozenset(),
    order_ids: tuple[str, ...] = ("302-1234567-1234567",),
) -> Decision:
    """A decision with plausible defaults; each call gets a new queue id unless given."""
    qid = queue_id or f"Q{next(_ids):06d}{secrets.token_hex(3).upper()}"
    if findings is None:
        findings = (finding(action=action),) if action is not Action.PASS else ()
    return Decision(
        queue_id=qid,
        decided_at=decided_at,
        envelope=Envelope(
            queue_id=qid,
            mail_from=mail_from,
            rcpt_tos=rcpt,
            peer="127.0.0.1",
            helo="helpdesk.example",
            account=account,
            tls=True,
            received_at=decided_at - timedelta(milliseconds=40),
            mail_options=("BODY=8BITMIME",),
        ),
        verdict=Verdict(
            action=action,
            profile=profile,
            findings=findings,
            signals=signals,
            order_ids=order_ids,
            buyer=rcpt[0].lower() if rcpt else None,
        ),
        subject=subject,
        size=size,
        durations_ms={"parse": 1.5, "evaluate": 0.25, "act": 3.0},
        outcome=outcome,
        refused={},
    )


def raw_message(subject: str = "Your order", body: str = "Please remove your review.\r\n") -> bytes:
    """A small raw message with CRLF line ends and a non-ASCII header, as SMTP delivers it."""
    return (
        "From: Support <support@seller.example>\r\n"
        "To: a1b2c3@marketplace.amazon.de\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <m1@seller.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}"
        "Grüße, Ihr Team\r\n"
    ).encode()
