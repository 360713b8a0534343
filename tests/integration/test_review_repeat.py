"""``review.repeat`` through SMTP across a gateway restart: the per-order state lives in the store.

A real ``gateway serve`` (shipped policies) relays a review request for an order to
the capture hop; the gateway is restarted (SIGTERM; later SIGKILL right after a
250); a second review request for the same order is refused with
``550 5.7.1 [review.repeat]`` by the new process, while one for another order passes.
"""

from __future__ import annotations

import re
import smtplib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store import open_store
from gateway.store.records import DecisionQuery
from tests.storekit import backend_url, postgres
from tests.support.crash import SELLER, Gateway, write_config
from tests.support.servers import CaptureHop

__all__ = ["postgres"]

BUYER = "0a1b2c3d4e5f6a7@marketplace.amazon.de"
ORDER = "302-4455667-7788990"
OTHER_ORDER = "302-1122334-5566778"


def review_request(order: str, body: str, token: str) -> bytes:
    """A proactive review request for ``order`` (allowed once per order by the shipped policy)."""
    return (
        f"From: Support <{SELLER}>\r\nTo: {BUYER}\r\nSubject: Your order {order}\r\n"
        f"Message-ID: <{token}@seller.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nthank you for your order {order}. {body}\r\n\r\nKind regards\r\n"
    ).encode()


def send(port: int, data: bytes) -> tuple[int, str]:
    """One message over its own smtplib session; the final reply to DATA (or MAIL/RCPT)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("helpdesk.test")
        code, reply = client.mail(SELLER)
        if code == 250:
            code, reply = client.rcpt(BUYER)
        if code == 250:
            code, reply = client.data(data)
        return code, reply.decode()


def wait_for_review_request(database_url: str, order: str, timeout: float = 10.0) -> datetime:
    """Poll the store until the review request for ``order`` is committed; return its time."""
    store = open_store(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            when = store.load_state([order], None, datetime.now(UTC)).review_requested(order)
            if when is not None:
                return when
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError(f"no review request for {order} committed within {timeout} s")


def assert_repeat_refused(port: int, order: str, first_sent: datetime, token: str) -> None:
    """A second review request for ``order`` gets 550 [review.repeat] naming the first one's date."""
    code, reply = send(port, review_request(order, "Please share your honest feedback.", token))
    assert code == 550, reply
    assert reply.startswith("5.7.1 [review.repeat]"), reply
    assert f"order {order}: review already requested on {first_sent:%Y-%m-%d}" in reply


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_second_review_request_for_an_order_is_refused_after_restarts(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capture: CaptureHop
) -> None:
    """Relayed first requests are remembered by the store across a SIGTERM restart and a SIGKILL restart."""
    database_url = None if backend == "sqlite" else backend_url(request, backend, str(tmp_path))
    config = write_config(tmp_path, capture.port, database_url, workers=1)
    url = database_url or f"sqlite:///{(tmp_path / 'data' / 'gateway.db').resolve()}"
    log = tmp_path / "gateway.log"
    asks = "We would appreciate it if you could leave a review."

    first = Gateway(config, log).wait_started()
    sent_at = datetime.now(UTC)
    code, reply = send(first.port, review_request(ORDER, asks, "r1"))
    assert (code, "held" in reply) == (250, False), reply
    assert first.stop() == 0  # a clean stop: queued state writes are finished first
    assert abs(wait_for_review_request(url, ORDER) - sent_at) < timedelta(minutes=1)

    second = Gateway(config, log).wait_started()
    assert_repeat_refused(second.port, ORDER, sent_at, "r2")
    # The rule is about the order, not the words: another order's first request passes.
    other_sent_at = datetime.now(UTC)
    code, reply = send(second.port, review_request(OTHER_ORDER, asks, "r3"))
    assert code == 250, reply
    # SIGKILL the moment the 250 arrived: the reply waited for the state row, so it is there.
    second.kill()
    assert wait_for_review_request(url, OTHER_ORDER, timeout=0) >= other_sent_at - timedelta(seconds=1)

    third = Gateway(config, log).wait_started()
    try:
        assert_repeat_refused(third.port, OTHER_ORDER, other_sent_at, "r4")
        assert_repeat_refused(third.port, ORDER, sent_at, "r5")
    finally:
        assert third.stop() == 0
    # Only the two first requests reached the next hop.
    assert [re.findall(rb"Message-ID: <(r\d)@", m.data) for m in capture.messages] == [[b"r1"], [b"r3"]]

    store = open_store(url)
    try:
        refused = store.list_decisions(DecisionQuery(rule="review.repeat")).items
        assert sorted(d.decision.verdict.order_ids for d in refused) == sorted([(ORDER,), (ORDER,), (OTHER_ORDER,)])
        assert {d.decision.outcome for d in refused} == {"rejected"}
    finally:
        store.close()
