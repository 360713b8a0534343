"""The dashboard in real headless Chromium, served by a real `gateway serve --dev` fed over SMTP.

Messages go through the gateway's SMTP port (smtplib), are decided by the shipped
policies, and show up in the dashboard's counts and charts. Earlier days of
history are written to the same SQLite store before the gateway starts (as the
pipeline would have), so the per-day chart has more than one column. The test
writes ``docs/screenshots/dashboard.png``.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import dev_config
from gateway.model import Action, Category
from gateway.store import open_store
from gateway.web.runtime import DEV_ADMIN_NAME, DEV_ADMIN_PASSWORD
from tests.e2e.conftest import SCREENSHOTS
from tests.storekit import decision, finding
from tests.support.process import GatewayProcess

# Chromium comes from the shared session fixtures of tests/e2e/conftest.py (one Playwright per session).
pytestmark = pytest.mark.e2e

_ADMIN = re.compile(r"service_started\b[^\n]*")
_PORT = re.compile(r"listen[\"=:\s]+\"?127\.0\.0\.1:(\d+)")

AMAZON = "k3v9x2@marketplace.amazon.de"
EBAY = "buyer77@members.ebay.co.uk"

#: (recipient, subject, body, the action the shipped policies take)
MESSAGES = [
    (AMAZON, "Re: Charger", "Yes, the charger works with 230 V and 110 V. Kind regards, the support team", "pass"),
    (EBAY, "Question about the size", "The jacket runs small, we suggest one size up. Best regards", "pass"),
    (AMAZON, "Order update", "See the full catalogue at https://shop.example.com/catalogue for more.", "quarantine"),
    (EBAY, "About your feedback", "Could you please remove your review now that the problem is solved?", "quarantine"),
    (AMAZON, "Gutschein", "Für eine 5-Sterne-Bewertung schicken wir Ihnen einen 20-€-Gutschein.", "reject"),
    (
        AMAZON,
        "Merci",
        "Utilisez le code MERCI10 pour obtenir 10 % de réduction sur votre prochaine commande.",
        "reject",
    ),
]


def admin_port(process: GatewayProcess, timeout: float = 60.0) -> int:
    """The console's port, from the ``service_started`` line of the admin service."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in _ADMIN.findall(process.output()):
            if "admin" in line and (found := _PORT.search(line)):
                return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"the console did not start:\n{process.output()[-4000:]}")


def seed_history(data_dir: Path) -> Counter[str]:
    """Decisions of the six days before today, written to the dev store; returns how many per action."""
    store = open_store(dev_config(data_dir).database_url)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    removal = finding(language="en")
    incentive = finding("review.incentive", Category.REVIEW_INCENTIVE, Action.REJECT, language="pl", evidence="rabat")
    contact = finding("contact.phone", Category.CONTACT_OFFPLATFORM, Action.REJECT, language="it", evidence="+39 06")
    link = finding("link.external", Category.LINK_EXTERNAL, Action.QUARANTINE, language=None, evidence="shop.example")
    counts: Counter[str] = Counter()
    try:
        for days_ago in range(1, 7):
            at = today - timedelta(days=days_ago)
            passed = Action.PASS
            batch = [
                decision(action=passed, outcome="relayed", account="acme-eu", decided_at=at)
                for _ in range(days_ago + 3)
            ]
            batch += [
                decision(findings=(link,), account="acme-eu", decided_at=at),
                decision(
                    action=Action.REJECT, findings=(incentive,), account="globex", decided_at=at, outcome="rejected"
                ),
            ]
            if days_ago % 2:
                batch += [
                    decision(
                        action=Action.REJECT, findings=(contact,), account="initech", decided_at=at, outcome="rejected"
                    ),
                    decision(findings=(removal,), account="globex", decided_at=at),
                ]
            for made in batch:
                store.record_decision(made)
                counts[made.verdict.action.value] += 1
    finally:
        store.close()
    return counts


def send_all(port: int) -> None:
    """Send :data:`MESSAGES` through the gateway; the rejected ones must get a 5xx at end of DATA."""
    for rcpt, subject, body, expected in MESSAGES:
        message = EmailMessage()
        message["From"] = "Support <support@seller.example>"
        message["To"] = rcpt
        message["Subject"] = subject
        message["In-Reply-To"] = "<question-1@marketplace.example>"  # answers to buyers, not proactive mail
        message.set_content(body)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            if expected == "reject":
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.send_message(message)
                assert refused.value.smtp_code // 100 == 5, (subject, refused.value)
            else:
                client.send_message(message)  # passed and quarantined messages are both accepted


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[GatewayProcess, Counter[str], int]]:
    """A `gateway serve --dev` with history; yields the process, its history size and the console port."""
    data_dir = tmp_path / "dev"
    data_dir.mkdir()
    history = seed_history(data_dir)
    process = GatewayProcess(
        "--dev",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--capture-port",
        "0",
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        log_path=tmp_path / "gateway.log",
    )
    try:
        process.wait_started()
        yield process, history, admin_port(process)
    finally:
        process.stop()


def tile(page: object, label: str) -> int:
    """The number on the dashboard tile labelled ``label``."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    value = page.locator(f"ul.tiles li:has(.tile-label:text-is('{label}')) .tile-value").inner_text()
    return int(value)


def test_dashboard_in_chromium(gateway: tuple[GatewayProcess, Counter[str], int], page: Any) -> None:
    """Sign in, open the dashboard: counts match what went through SMTP, charts render, bars work from the keyboard."""
    process, history, port = gateway
    send_all(process.port)
    base = f"http://127.0.0.1:{port}"
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{base}/dashboard?period=7")
    assert "/login" in page.url  # signed out: the sign-in page first
    page.fill("input[name=name]", DEV_ADMIN_NAME)
    page.fill("input[name=password]", DEV_ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard\?period=7$"))

    assert tile(page, "decisions") == sum(history.values()) + len(MESSAGES)
    for action in ("pass", "quarantine", "reject"):
        expected = history[action] + sum(1 for m in MESSAGES if m[3] == action)
        assert tile(page, action) == expected, action
    assert tile(page, "held now, awaiting review") == 2  # the two quarantined today
    charts = page.locator("svg.chart[role=img]")
    assert charts.count() == 6
    for index in range(6):
        chart = charts.nth(index)
        labelled = chart.get_attribute("aria-labelledby") or ""
        title_id = labelled.split()[0]
        assert chart.locator(f"title#{title_id}").text_content()
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 40
    rules = page.locator("#chart-rules text").all_text_contents()
    assert "review.incentive" in rules
    assert "link.external" in rules
    languages = page.locator("#chart-languages text").all_text_contents()
    assert {"de", "fr", "pl"} <= set(languages)
    today = datetime.now(UTC).date()
    # Seven columns, one per day, and today's holds the messages sent through SMTP.
    tips = page.locator("#chart-days .column > title").all_text_contents()
    assert len(tips) == 7
    assert tips[-1].startswith(f"{today.isoformat()}: {len(MESSAGES)} decisions"), tips[-1]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # A bar is a link: focus it and press Enter, as a keyboard user would.
    bar = page.locator("#chart-accounts a").first
    bar.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/decisions\?.*account="))
    assert page.locator("table.decisions tbody tr").count() > 0

    assert all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]
    assert problems == []
