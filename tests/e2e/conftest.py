"""A real ``gateway serve`` (SMTP + console) with a capturing next hop, and headless Chromium driving it."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.admin.users import UserManager
from gateway.store import open_store
from gateway.store.records import Role
from tests.support.process import GatewayProcess
from tests.support.servers import CaptureHop, LoopThread

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "e2e console password"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EBAY_BUYER = "buyer7@members.ebay.de"

# The eBay profile with tracking and sentiment findings held for review instead of refused,
# so a hostile HTML message lands in quarantine (a site override, as operators write them).
LOCAL_EBAY = 'id: ebay\nrules:\n  "tracking.*": quarantine\n  "review.sentiment*": quarantine\n'


@dataclass
class Stack:
    """The running gateway, its next hop, and where the console listens."""

    process: GatewayProcess
    hop: CaptureHop
    smtp_port: int
    console_url: str

    def send(self, raw: bytes, rcpt: str = EBAY_BUYER, sender: str = "support@seller.example") -> str:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=60) as client:
            client.sendmail(sender, [rcpt], raw)
            return str(client.noop())


def _console_port(process: GatewayProcess) -> int:
    started = process.wait_for("service_started", timeout=60)
    listen = next(e["listen"] for e in started if e.get("service") == "admin")
    return int(str(listen).rsplit(":", 1)[1])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    loop_thread = LoopThread()
    hop = CaptureHop(loop_thread).start()
    data = tmp_path / "data"
    data.mkdir()
    local = tmp_path / "local-policies" / "marketplaces"
    local.mkdir(parents=True)
    (local / "ebay.yaml").write_text(LOCAL_EBAY, encoding="utf-8")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
data_dir = "{data}"
[server]
listen = "127.0.0.1:0"
hostname = "gw.test"
shutdown_grace = 3.0
[[accounts]]
name = "helpdesk"
networks = ["127.0.0.0/8"]
senders = ["@seller.example"]
[upstreams.default]
host = "127.0.0.1"
port = {hop.port}
tls = "none"
timeout = 10.0
[policy]
local_path = "{tmp_path / "local-policies"}"
[parser]
pool_workers = 0
[admin]
listen = "127.0.0.1:0"
secure_cookies = false
[notices]
from_address = "postmaster@gw.test"
""",
        encoding="utf-8",
    )
    store = open_store(f"sqlite:///{data / 'gateway.db'}")
    try:
        users = UserManager(store, lambda: datetime.now(UTC))
        loop_thread.run(users.add("admin", PASSWORD, Role.ADMIN, actor="e2e"))
    finally:
        store.close()
    process = GatewayProcess("--config", str(config), log_path=tmp_path / "gateway.log")
    try:
        process.wait_started(timeout=120)
        stack = Stack(process, hop, process.port, f"http://127.0.0.1:{_console_port(process)}")
        yield stack
    finally:
        process.stop()
        hop.stop()
        loop_thread.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module, not per session: the sync Playwright keeps an asyncio loop running in this
    # thread while it is open, and every later test that runs a loop (asyncio.run,
    # pytest-asyncio) would fail with "cannot be called from a running event loop".
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def sign_in(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.console_url}/queue")
    assert "/login" in page.url
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url == f"{stack.console_url}/queue", page.locator("main").inner_text()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=False)
    return path
