"""A console over a real SQLite store, the real parser and policy, and a real capturing next hop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from gateway.admin.service import ReviewService
from gateway.config import Config, ParserConfig, parse_config
from gateway.mime.parse import MessageParser, parse_message
from gateway.model import Decision, Envelope
from gateway.policy.holder import PolicyHolder
from gateway.state import EMPTY_STATE
from gateway.store import SqlStore, open_store
from gateway.store.records import Role
from gateway.upstream.pool import UpstreamPool
from gateway.web.app import create_app
from gateway.web.auth import LoginLimiter
from tests.support.servers import CaptureHop, LoopThread

PASSWORD = "correct horse battery staple"
EBAY_BUYER = "buyer7@members.ebay.de"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def plain(
    body: str, *, subject: str = "Order 12-34567-89012", rcpt: str = EBAY_BUYER, mid: str = "<p1@seller>"
) -> bytes:
    return (
        f"From: Shop <support@seller.example>\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def html(markup: str, *, subject: str = "About your order", rcpt: str = EBAY_BUYER) -> bytes:
    return (
        f"From: Shop <support@seller.example>\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <h1@seller>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{markup}\r\n"
    ).encode()


REVIEW_ASK = "Hello,\r\nplease revise your negative feedback, we will send a new kettle.\r\nRegards"


@pytest.fixture(scope="session")
def holder(tmp_path_factory: pytest.TempPathFactory) -> PolicyHolder:
    """The shipped policy (compiled once: it takes seconds)."""
    config = parse_config({"upstreams": {"default": {"host": "127.0.0.1"}}}, "test", environ={})
    return PolicyHolder.load(config)


@dataclass
class Console:
    """The app under test and what it runs on."""

    config: Config
    store: SqlStore
    service: ReviewService
    holder: PolicyHolder
    hop: CaptureHop
    limiter: LoginLimiter
    clients: list[TestClient] = field(default_factory=list)
    counter: int = 0
    app: Starlette | None = None

    def client(self, *, https: bool = False, fresh: bool = False) -> TestClient:
        """A new browser on the console app (``fresh``: a new app, after changing config or limiter)."""
        if self.app is None or fresh:
            self.app = create_app(self.config, self.service, self.holder, limiter=self.limiter)
        client = TestClient(self.app, base_url="https://testserver" if https else "http://testserver")
        client.__enter__()
        self.clients.append(client)
        return client

    def user(self, name: str, role: Role) -> str:
        asyncio.run(self.service.add_user(name, PASSWORD, role, actor="test"))
        return name

    def signed_in(self, role: Role, name: str | None = None) -> TestClient:
        name = name or f"{role.value}1"
        if not any(u.name == name for u in asyncio.run(self.service.list_users())):
            self.user(name, role)
        client = self.client()
        response = login(client, name, PASSWORD)
        assert response.status_code == 303, response.text
        return client

    def quarantine(self, raw: bytes, *, rcpt: str = EBAY_BUYER, account: str = "helpdesk") -> str:
        """Evaluate ``raw`` with the real parser and policy, as the pipeline does, and quarantine it."""
        parsed = parse_message(raw, ParserConfig(pool_workers=0))
        policy = self.holder.current
        route = policy.route([rcpt])
        verdict = policy.evaluate(parsed, route, EMPTY_STATE)
        self.counter += 1
        qid = f"WEB{self.counter:05d}"
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        env = Envelope(qid, "support@seller.example", (rcpt,), peer="127.0.0.1", account=account, received_at=now)
        decision = Decision(qid, now, env, verdict, subject=parsed.subject, size=len(raw), outcome="quarantined")
        return self.store.quarantine(decision, raw)


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, name: str, password: str) -> object:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False)


@pytest.fixture
def console(tmp_path: Path, holder: PolicyHolder) -> Iterator[Console]:
    loop_thread = LoopThread()
    hop = CaptureHop(loop_thread).start()
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "server": {"hostname": "gw.test"},
            "upstreams": {"default": {"host": "127.0.0.1", "port": hop.port, "tls": "none", "timeout": 5.0}},
            "store": {"database_url": f"sqlite:///{tmp_path}/gateway.db"},
            "admin": {"secure_cookies": False},
            "notices": {"from_address": "postmaster@gw.test"},
        },
        "test",
        environ={},
    )
    store = open_store(config.database_url)
    parser = MessageParser(ParserConfig(pool_workers=0))
    pool = UpstreamPool(config)
    service = ReviewService(store, pool, parser, holder, config)
    rig = Console(config, store, service, holder, hop, LoginLimiter())
    yield rig
    # The pool's idle connections live in the event loop of the client that relayed last:
    # quit them there before the clients' loops stop (left open, they warn as unclosed sockets).
    for client in rig.clients:
        client.portal.call(pool.close)
    for client in rig.clients:
        client.__exit__(None, None, None)
    store.close()
    hop.stop()
    loop_thread.close()
