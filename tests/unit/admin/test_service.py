"""The review service: release, reject with notice, delete, rescan, purge, export, bulk, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from gateway.admin.results import InputError
from gateway.admin.service import ReviewService
from gateway.model import Action, Decision, Envelope
from gateway.state import EMPTY_STATE, EventKind, StateEvent
from gateway.store import ConflictError, NotFoundError, SqlStore, open_store
from gateway.store.records import AuditQuery, AuditResult, DecisionQuery, QuarantineQuery, QuarantineStatus
from tests.reviewkit import CaptureServer, FakeParser, FakePolicy, LoopbackRelay, make_config

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)
ORDER = "302-7654321-7654321"


def message(body: str, *, subject: str = f"Order {ORDER}", message_id: str = "<orig-1@helpdesk.example>") -> bytes:
    return (
        "From: Anna from Shop <support@seller.example>\r\n"
        "To: buyer1@marketplace.amazon.de\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
        "Viele Grüße\r\n"
    ).encode()


@dataclass
class Rig:
    store: SqlStore
    service: ReviewService
    upstream: CaptureServer
    notices: CaptureServer
    policy: FakePolicy
    clock: list[datetime]

    async def quarantine(
        self, body: str = "Please remove your review.", *, mail_from: str = "support@seller.example", **kw: str
    ) -> str:
        """Evaluate a message like the pipeline would and quarantine it."""
        raw = message(body, **kw)
        parsed = await FakeParser().parse(raw)
        rcpt = ("buyer1@marketplace.amazon.de",)
        verdict = self.policy.evaluate(parsed, self.policy.route(rcpt), EMPTY_STATE)
        assert verdict.action is not Action.PASS
        qid = f"Q{len(self.store.list_quarantined(QuarantineQuery(limit=1000)).items) + 1:04d}"
        env = Envelope(queue_id=qid, mail_from=mail_from, rcpt_tos=rcpt, peer="127.0.0.1", account="acme")
        decision = Decision(
            qid, self.clock[0], env, verdict, subject=parsed.subject, size=len(raw), outcome="quarantined"
        )
        return self.store.quarantine(decision, raw)


@pytest.fixture
async def rig(store: SqlStore, database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    upstream = await CaptureServer().start()
    notices = await CaptureServer().start()
    ports = {"default": upstream.port, "notices": notices.port}
    config = make_config(tmp_path, database_url, ports)
    policy = FakePolicy()
    clock = [NOW]
    service = ReviewService(store, LoopbackRelay(ports), FakeParser(), lambda: policy, config, clock=lambda: clock[0])
    yield Rig(store, service, upstream, notices, policy, clock)
    await upstream.stop()
    await notices.stop()


async def test_release_delivers_the_exact_bytes_with_the_original_envelope(rig: Rig) -> None:
    """Release relays the stored bytes unchanged to the next hop, from the original sender to the buyer."""
    qid = await rig.quarantine(mail_from="bounce+123@seller.example")
    result = await rig.service.release(qid, user="alice", reason="false positive: asks for feedback on service")
    assert result.ok
    assert result.status is QuarantineStatus.RELEASED
    assert "queued as C1" in result.upstream_reply
    (got,) = rig.upstream.received
    assert got.data == rig.store.raw(qid)
    assert got.mail_from == "bounce+123@seller.example"
    assert got.rcpt_tos == ["buyer1@marketplace.amazon.de"]
    record = rig.store.get_quarantined(qid)
    assert (record.status, record.status_by) == (QuarantineStatus.RELEASED, "alice")
    assert record.status_reason == "false positive: asks for feedback on service"


async def test_release_is_audited_with_who_and_why(rig: Rig) -> None:
    """The audit log records who released, why, when and the upstream's answer."""
    qid = await rig.quarantine()
    await rig.service.release(qid, user="alice", reason="ok after review")
    (entry,) = (await rig.service.audit_log(AuditQuery(target=qid))).items
    assert (entry.actor, entry.action, entry.reason, entry.result) == (
        "alice",
        "release",
        "ok after review",
        AuditResult.OK,
    )
    assert entry.at == NOW
    assert "queued as C1" in entry.detail


async def test_release_records_the_review_request_for_review_repeat(rig: Rig) -> None:
    """A released review request is remembered for its order, so the next one is a review.repeat."""
    qid = await rig.quarantine()
    await rig.service.release(qid, user="alice", reason="fine")
    assert rig.store.load_state([ORDER], None, NOW).review_requested(ORDER) == NOW


async def test_released_message_cannot_be_released_again(rig: Rig) -> None:
    """A second release of the same message is refused with who released it, and audited as refused."""
    qid = await rig.quarantine()
    await rig.service.release(qid, user="alice", reason="fine")
    with pytest.raises(ConflictError, match="already released by alice"):
        await rig.service.release(qid, user="bob", reason="also fine")
    assert len(rig.upstream.received) == 1
    refused = (await rig.service.audit_log(AuditQuery(actor="bob"))).items
    assert refused[0].result is AuditResult.REFUSED


@pytest.mark.parametrize("reply", ["451 4.3.0 Try again later", "554 5.7.1 Policy rejection"])
async def test_upstream_failure_keeps_the_message_held_with_the_error(rig: Rig, reply: str) -> None:
    """When the next hop refuses, the message stays held, the error is recorded and shown, then retry works."""
    qid = await rig.quarantine()
    rig.upstream.fail_data = reply
    result = await rig.service.release(qid, user="alice", reason="fine")
    assert not result.ok
    assert result.status is QuarantineStatus.HELD
    assert reply.split()[0] in result.error
    assert "stays held" in result.message
    record = rig.store.get_quarantined(qid)
    assert record.status is QuarantineStatus.HELD
    assert reply.split(" ", 1)[1] in record.last_error
    assert (await rig.service.audit_log(AuditQuery(target=qid))).items[0].result is AuditResult.FAILED

    rig.upstream.fail_data = None
    assert (await rig.service.release(qid, user="alice", reason="retry")).ok
    assert len(rig.upstream.received) == 1


async def test_unreachable_upstream_keeps_the_message_held(rig: Rig) -> None:
    """A next hop that does not answer at all leaves the message held with a 451-style error."""
    qid = await rig.quarantine()
    await rig.upstream.stop()
    result = await rig.service.release(qid, user="alice", reason="fine")
    assert not result.ok
    assert result.error.startswith("451")
    assert rig.store.get_quarantined(qid).status is QuarantineStatus.HELD


async def test_partial_refusal_is_reported(rig: Rig) -> None:
    """Recipients the next hop refuses on release are named in the result and the record."""
    raw = message("Please remove your review.")
    verdict = rig.policy.evaluate(await FakeParser().parse(raw), rig.policy.route(["a@x"]), EMPTY_STATE)
    env = Envelope(queue_id="P1", mail_from="s@seller.example", rcpt_tos=("good@x.example", "gone@x.example"))
    rig.store.quarantine(Decision("P1", NOW, env, verdict, outcome="quarantined"), raw)
    rig.upstream.refuse_rcpt = {"gone@x.example"}
    result = await rig.service.release("P1", user="alice", reason="fine")
    assert result.ok
    assert result.refused == {"gone@x.example": "550 5.1.1 no such user"}
    assert "gone@x.example" in result.message
    assert rig.store.get_quarantined("P1").refused == {"gone@x.example": "550 5.1.1 no such user"}


async def test_two_concurrent_releases_deliver_once(rig: Rig) -> None:
    """Two releases of one message at the same moment: one delivers, the other is refused."""
    qid = await rig.quarantine()
    rig.upstream.data_delay = 0.2
    results = await asyncio.gather(
        rig.service.release(qid, user="alice", reason="a"),
        rig.service.release(qid, user="bob", reason="b"),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException) and r.ok) == 1
    assert sum(1 for r in results if isinstance(r, ConflictError)) == 1
    assert len(rig.upstream.received) == 1


async def test_two_gateways_sharing_a_store_release_once(rig: Rig, database_url: str, tmp_path: Path) -> None:
    """A second service on its own connection pool (another gateway) cannot release it a second time."""
    qid = await rig.quarantine()
    other_store = open_store(database_url)
    try:
        ports = {"default": rig.upstream.port}
        other = ReviewService(
            other_store,
            LoopbackRelay(ports),
            FakeParser(),
            lambda: rig.policy,
            make_config(tmp_path, database_url, ports),
            clock=lambda: NOW,
        )
        rig.upstream.data_delay = 0.2
        results = await asyncio.gather(
            rig.service.release(qid, user="alice", reason="a"),
            other.release(qid, user="bob", reason="b"),
            return_exceptions=True,
        )
    finally:
        other_store.close()
    assert [isinstance(r, ConflictError) for r in results].count(True) == 1
    assert len(rig.upstream.received) == 1


async def test_a_claim_left_by_a_crashed_worker_expires(rig: Rig) -> None:
    """A message stuck in 'releasing' by a dead process can be released once its lease ran out."""
    qid = await rig.quarantine()
    rig.store.claim_release(qid, "dead-worker", NOW - timedelta(hours=1), NOW - timedelta(minutes=45))
    assert rig.store.get_quarantined(qid).status is QuarantineStatus.RELEASING
    assert (await rig.service.release(qid, user="alice", reason="recovered")).ok
    assert len(rig.upstream.received) == 1


async def test_reject_without_notice(rig: Rig) -> None:
    """Reject marks the message rejected with who and why and sends nothing anywhere."""
    qid = await rig.quarantine()
    result = await rig.service.reject(qid, user="alice", reason="asks to delete a review")
    assert result.ok
    assert result.notice is None
    record = rig.store.get_quarantined(qid)
    assert (record.status, record.status_by, record.status_reason) == (
        QuarantineStatus.REJECTED,
        "alice",
        "asks to delete a review",
    )
    assert rig.upstream.received == []
    assert rig.notices.received == []


async def test_reject_with_notice_tells_the_sender_what_and_why(rig: Rig) -> None:
    """The notice goes to the original sender via the notices upstream and says what, to whom, why, what to do."""
    qid = await rig.quarantine("Could you please remove your review? We will refund you.")
    result = await rig.service.reject(
        qid, user="alice", reason="Review removal request; offer the refund alone.", notify=True
    )
    assert result.notice is not None
    assert result.notice.sent
    assert "notice sent to support@seller.example" in result.message
    (got,) = rig.notices.received
    assert got.mail_from == "postmaster@gateway.test"
    assert got.rcpt_tos == ["support@seller.example"]
    assert rig.upstream.received == []
    notice = message_from_bytes(got.data, policy=default_policy)
    assert notice["Subject"] == f"Not sent: Order {ORDER}"
    assert notice["To"] == "support@seller.example"
    assert notice["In-Reply-To"] == "<orig-1@helpdesk.example>"
    assert notice["Auto-Submitted"] is None
    body = notice.get_content()
    assert "NOT sent to the buyer" in body
    assert "buyer1@marketplace.amazon.de" in body
    assert "review.removal" in body
    assert "Asks the buyer to remove or change a review." in body
    assert 'Found in text/plain: "review"' in body
    assert "Reviewer's note (alice)" in body
    assert "offer the refund alone" in body
    assert "What to change:" in body
    assert "Do not ask the buyer to remove" in body
    assert qid in body
    record = rig.store.get_quarantined(qid)
    assert record.notice_status == "sent"
    audit = (await rig.service.audit_log(AuditQuery(target=qid))).items
    assert [a.action for a in audit] == ["notify", "reject"]


async def test_notice_that_cannot_be_sent_is_reported_and_the_reject_stands(rig: Rig) -> None:
    """If the notices upstream refuses, the message is still rejected and the failure is recorded and shown."""
    qid = await rig.quarantine()
    rig.notices.fail_data = "451 4.3.2 busy"
    result = await rig.service.reject(qid, user="alice", reason="no", notify=True)
    assert result.ok
    assert result.notice is not None
    assert not result.notice.sent
    assert "NOT sent" in result.message
    assert "451" in result.message
    record = rig.store.get_quarantined(qid)
    assert record.status is QuarantineStatus.REJECTED
    assert (record.notice_status, record.notice_detail) == ("failed", "451 4.3.2 busy")
    assert (await rig.service.audit_log(AuditQuery(action="notify"))).items[0].result is AuditResult.FAILED


async def test_null_sender_cannot_be_notified(rig: Rig) -> None:
    """A message with a null sender is rejected; the notice is reported as impossible, nothing is sent."""
    qid = await rig.quarantine(mail_from="")
    result = await rig.service.reject(qid, user="alice", reason="no", notify=True)
    assert result.notice is not None
    assert not result.notice.sent
    assert "null sender" in result.notice.detail
    assert rig.notices.received == []


async def test_delete_removes_the_bytes_and_keeps_the_record(rig: Rig) -> None:
    """Delete drops the content (export then fails clearly) but keeps record, decision and audit."""
    qid = await rig.quarantine()
    result = await rig.service.delete(qid, user="alice", reason="spam test")
    assert result.status is QuarantineStatus.DELETED
    view = await rig.service.show(qid)
    assert view.parsed is None
    assert view.raw_size == 0
    with pytest.raises(ConflictError, match="no longer stored"):
        await rig.service.export(qid, user="alice")
    assert rig.store.list_decisions(DecisionQuery()).total == 1


async def test_show_parses_the_stored_message(rig: Rig) -> None:
    """show() returns the record with its verdict and the parse of its raw bytes."""
    qid = await rig.quarantine()
    view = await rig.service.show(qid)
    assert view.parsed is not None
    assert view.parsed.subject == f"Order {ORDER}"
    assert view.record.verdict.findings[0].rule == "review.removal"
    assert view.raw_size == len(rig.store.raw(qid))


async def test_export_returns_the_exact_bytes_and_is_audited(rig: Rig) -> None:
    """export() gives back the original .eml byte for byte and leaves an audit row."""
    qid = await rig.quarantine()
    assert await rig.service.export(qid, user="carol") == message("Please remove your review.")
    assert (await rig.service.audit_log(AuditQuery(actor="carol"))).items[0].action == "export"


async def test_rescan_reports_a_message_that_now_passes_and_keeps_it_held(rig: Rig) -> None:
    """After a policy change a rescan says the message passes, records it, and releases nothing."""
    qid = await rig.quarantine()
    still = await rig.service.rescan(qid, user="alice")
    assert not still.now_passes
    assert "would still be quarantined" in still.message
    rig.policy.words = ()
    result = await rig.service.rescan(qid, user="alice", reason="rules updated")
    assert result.now_passes
    assert result.previous is Action.QUARANTINE
    assert "now passes" in result.message
    assert "stays held" in result.message
    record = rig.store.get_quarantined(qid)
    assert record.status is QuarantineStatus.HELD
    assert record.rescan is not None
    assert record.rescan.verdict.action is Action.PASS
    assert rig.upstream.received == []
    assert (await rig.service.audit_log(AuditQuery(action="rescan"))).total == 2


async def test_rescan_reads_current_per_order_state(rig: Rig) -> None:
    """A rescan sees a review request released since, so the held one is now a review.repeat."""
    first = await rig.quarantine()
    second = await rig.quarantine()
    await rig.service.release(first, user="alice", reason="fine")
    result = await rig.service.rescan(second, user="alice")
    assert result.verdict.action is Action.REJECT
    assert "review.repeat" in result.message


async def test_rescan_all_covers_every_held_message(rig: Rig) -> None:
    """rescan_held() re-evaluates each held message and none other."""
    a = await rig.quarantine()
    b = await rig.quarantine()
    c = await rig.quarantine()
    await rig.service.reject(c, user="alice", reason="no")
    results = await rig.service.rescan_held(user="alice")
    assert {r.id for r in results} == {a, b}


async def test_purge_uses_the_retention_setting_by_default(rig: Rig) -> None:
    """purge() without an age removes reviewed messages older than retention_days (30), nothing newer."""
    old = await rig.quarantine()
    await rig.service.reject(old, user="alice", reason="no")
    rig.clock[0] = NOW + timedelta(days=20)
    recent = await rig.quarantine()
    await rig.service.reject(recent, user="alice", reason="no")
    rig.clock[0] = NOW + timedelta(days=31)
    result = await rig.service.purge(user="alice")
    assert result.quarantined == 1
    remaining = [r.id for r in (await rig.service.list_messages(QuarantineQuery())).items]
    assert remaining == [recent]
    with pytest.raises(NotFoundError):
        await rig.service.export(old, user="alice")


async def test_purge_removes_state_events_after_their_own_retention(rig: Rig) -> None:
    """purge() drops state events older than state_retention_days (365), whatever the quarantine age given."""
    rig.store.record_events(
        [
            StateEvent(EventKind.REVIEW_REQUEST, "302-0000001", NOW - timedelta(days=400), "Qa"),
            StateEvent(EventKind.REVIEW_REQUEST, "302-0000002", NOW - timedelta(days=300), "Qb"),
            StateEvent(EventKind.PROACTIVE, "b@marketplace.amazon.de", NOW - timedelta(days=366), "Qc"),
        ]
    )
    result = await rig.service.purge(user="alice", older_than=timedelta(days=1), reason="monthly")
    assert result.state_events == 2
    left = rig.store.load_state(["302-0000001", "302-0000002"], "b@marketplace.amazon.de", NOW - timedelta(days=999))
    assert [e.queue_id for e in left.events] == ["Qb"]
    details = [e.detail for e in rig.store.list_audit(AuditQuery(action="purge")).items]
    assert "state events older than 365 days: 2 state events" in details


async def test_bulk_release_reports_each_message(rig: Rig) -> None:
    """Bulk release releases what it can and reports unknown or already-decided ids without stopping."""
    a = await rig.quarantine()
    b = await rig.quarantine()
    await rig.service.reject(b, user="alice", reason="no")
    results = await rig.service.release_many([a, "missing", b], user="alice", reason="batch ok")
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].status is None
    assert "missing" in results[1].error
    assert results[2].status is QuarantineStatus.REJECTED
    assert len(rig.upstream.received) == 1


async def test_bulk_reject_with_notices(rig: Rig) -> None:
    """Bulk reject rejects each message and sends one notice per message."""
    ids = [await rig.quarantine(), await rig.quarantine()]
    results = await rig.service.reject_many(ids, user="alice", reason="review removal", notify=True)
    assert all(r.ok and r.notice is not None and r.notice.sent for r in results)
    assert len(rig.notices.received) == 2


@pytest.mark.parametrize("action", ["release", "reject"])
async def test_release_and_reject_need_a_reason(rig: Rig, action: str) -> None:
    """Release and reject without a reason are refused before anything changes."""
    qid = await rig.quarantine()
    with pytest.raises(InputError, match="needs a reason"):
        await getattr(rig.service, action)(qid, user="alice", reason="   ")
    assert rig.store.get_quarantined(qid).status is QuarantineStatus.HELD


async def test_unknown_id_is_refused_and_audited(rig: Rig) -> None:
    """Acting on an unknown id raises NotFoundError naming it and leaves a refused audit row."""
    with pytest.raises(NotFoundError, match="Q404"):
        await rig.service.release("Q404", user="alice", reason="x")
    with pytest.raises(NotFoundError, match="Q404"):
        await rig.service.reject("Q404", user="alice", reason="x")
    entries = (await rig.service.audit_log(AuditQuery(target="Q404"))).items
    assert {e.result for e in entries} == {AuditResult.REFUSED}
    assert len(entries) == 2
