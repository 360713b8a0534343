"""A real console over a real store for the log-view tests, and signed-in HTTP clients.

:class:`ConsoleKit` holds a console application (``create_app``) over a SQLite
store, the real review service and a small policy written to disk (so a test
can edit or break the files and reload). ``client(role)`` signs a new user in
through the real sign-in form, CSRF token and all.
"""

from __future__ import annotations

import functools
import re
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import argon2
import pytest
from starlette.applications import Starlette

from gateway.admin.service import ReviewService
from gateway.policy.holder import PolicyHolder, build_policy
from gateway.store import SqlStore, open_store
from gateway.store.records import AuditEntry, Role
from gateway.web.app import create_app
from tests.reviewkit import FakeParser, LoopbackRelay, make_config
from tests.unit.policy.conftest import write_policy
from tests.unit.policy.test_engine import LEXICONS, REMOVAL

with warnings.catch_warnings():
    # Starlette asks for httpx2 under its TestClient; the pinned httpx works and is what is installed.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"

#: The one test rule, with a language-independent example carrying a subject and an attachment.
RULE: dict[str, Any] = {
    **REMOVAL,
    "examples": {
        "hit": [
            {
                "subject": "Order 302-1234567-1234567",
                "body": "Please remove your review.",
                "attachments": [{"filename": "photo.png", "content_type": "image/png", "size": 10}],
            }
        ]
    },
}
#: The test lexicons with examples per language.
EXAMPLE_LEXICONS: dict[str, dict[str, Any]] = {
    "en": {
        **LEXICONS["en"],
        "examples": {"review.removal": {"hit": ["Please remove your review."], "pass": ["Thanks for your review."]}},
    },
    "de": {**LEXICONS["de"], "examples": {"review.removal": {"hit": ["Bitte löschen Sie Ihre Bewertung."]}}},
}

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.cache
def password_hash() -> str:
    """The argon2 hash of :data:`PASSWORD` with the service's parameters (no rehash on sign-in)."""
    return argon2.PasswordHasher().hash(PASSWORD)


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered page's forms."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


@dataclass
class ConsoleKit:
    """The console under test and what it runs on."""

    app: Starlette
    store: SqlStore
    service: ReviewService
    holder: PolicyHolder
    policy_root: Path
    clients: list[TestClient] = field(default_factory=list)

    def client(self, role: Role, name: str | None = None) -> TestClient:
        """A client signed in as a new user with ``role`` (through the sign-in form)."""
        name = name or f"{role.value}-{secrets.token_hex(3)}"
        # Straight into the store with a hash made once: argon2 is slow on purpose, and signing in verifies it.
        self.store.add_user(name, password_hash(), role, AuditEntry("test", "user_add", name, datetime.now(UTC)))
        client = TestClient(self.app, base_url="http://console.test", follow_redirects=False)
        client.__enter__()
        self.clients.append(client)
        form = client.get("/login")
        answer = client.post(
            "/login", data={"name": name, "password": PASSWORD, "next": "/", "csrf_token": csrf_of(form.text)}
        )
        assert answer.status_code == 303, answer.text
        return client

    def anonymous(self) -> TestClient:
        """A client that never signed in."""
        client = TestClient(self.app, base_url="http://console.test", follow_redirects=False)
        client.__enter__()
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
        self.store.close()


def build_console(tmp_path: Path, database_url: str | None = None, **config: Any) -> ConsoleKit:
    """A console over a fresh store (SQLite unless ``database_url``) and a one-rule policy under ``tmp_path``."""
    root = write_policy(tmp_path / "policies", [RULE], EXAMPLE_LEXICONS)
    holder = PolicyHolder(build_policy(root), lambda: build_policy(root))
    database_url = database_url or f"sqlite:///{tmp_path}/gateway.db"
    settings = make_config(
        tmp_path,
        database_url,
        {"default": 9},  # nothing listens: these views never relay
        admin={"secure_cookies": False, "secret_key": "test-key-" + "x" * 32},
        **config,
    )
    store = open_store(database_url)
    service = ReviewService(store, LoopbackRelay({"default": 9}), FakeParser(), holder, settings)
    app = create_app(settings, service, holder)
    return ConsoleKit(app=app, store=store, service=service, holder=holder, policy_root=root)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[ConsoleKit]:
    """A console under test (closed after the test)."""
    built = build_console(tmp_path)
    yield built
    built.close()
