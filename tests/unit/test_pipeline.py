"""The pipeline's contract: which reply, what is relayed or stored, one decision per message."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.config import Config
from gateway.model import Action, Decision, Envelope, Route, Verdict
from gateway.pipeline import Pipeline
from gateway.pipeline_types import PolicyNeeds, RelayError
from gateway.state import EventKind, StateEvent
from tests.support.fakes import FakeParser, FakePolicy, FakeRelay, FakeStore
from tests.support.messages import BUYER, SELLER, message
from tests.support.servers import make_config

ORDER = "302-1234567-7654321"


class Rig:
    def __init__(self, **sections: Any) -> None:
        self.config: Config = make_config(2525, **sections)
        self.parser = FakeParser()
        self.policy = FakePolicy(slow_seconds=1.0)
        self.relay = FakeRelay()
        self.store = FakeStore()
        self.pipeline = Pipeline(self.parser, lambda: self.policy, self.relay, self.store, self.config)

    async def run(self, raw: bytes, rcpts: tuple[str, ...] = (BUYER,), mail_from: str = SELLER) -> str:
        envelope = Envelope(
            queue_id="Q1", mail_from=mail_from, rcpt_tos=rcpts, peer="127.0.0.1", helo="helpdesk", account="helpdesk"
        )
        route = self.policy.route(list(rcpts))
        reply = str(await self.pipeline.run(envelope, route, raw))
        await self.pipeline.drain()  # decision-log writes may still be queued behind the reply
        return reply


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def test_pass_relays_with_trace_header_then_250(rig: Rig) -> None:
    """PASS: the raw message with our Received header goes upstream; 250 names both queue ids."""
    raw = message()
    reply = await rig.run(raw)
    assert reply == "250 2.0.0 Ok: queued as Q1 (next hop: 250 2.0.0 Ok: queued as UP1)"
    [(upstream, sender, rcpts, data)] = rig.relay.sent
    assert (upstream, sender, rcpts) == ("default", SELLER, (BUYER,))
    assert data.startswith(b"Received: from helpdesk ([127.0.0.1])\r\n\tby gw.test (marketplace-mail-gateway)")
    assert data.endswith(raw)
    [decision] = rig.store.decisions
    assert decision.outcome == "relayed"
    assert decision.verdict.action is Action.PASS
    assert set(decision.durations_ms) >= {"parse", "state", "evaluate", "relay"}


async def test_state_events_after_the_message_left(rig: Rig) -> None:
    """ORDER_SEEN per order id, REVIEW_REQUEST per order id, PROACTIVE for the buyer."""
    await rig.run(message(f"[review] [proactive] about order {ORDER}"))
    kinds = sorted((e.kind.value, e.key) for e in rig.store.events)
    assert kinds == [
        (EventKind.ORDER_SEEN.value, ORDER),
        (EventKind.PROACTIVE.value, BUYER.lower()),
        (EventKind.REVIEW_REQUEST.value, ORDER),
    ]
    assert all(e.queue_id == "Q1" for e in rig.store.events)


async def test_quarantine_commits_then_250(rig: Rig) -> None:
    """QUARANTINE: the stored bytes are exactly what a release would relay; 250 only after the commit."""
    raw = message("[hold] check this link")
    reply = await rig.run(raw)
    assert reply == "250 2.0.0 Ok: queued as Q1, held for review"
    [(decision, stored)] = rig.store.quarantined
    assert stored.startswith(b"Received: ")
    assert stored.endswith(raw)
    assert decision.outcome == "quarantined"
    assert decision.verdict.rule_ids == ("test.hold",)
    assert rig.relay.sent == []
    assert rig.store.decisions == [decision]  # written once, inside the quarantine transaction
    assert rig.store.events == []  # nothing left yet


async def test_reject_is_550_with_rule_and_evidence(rig: Rig) -> None:
    """REJECT: 550 5.7.1 [rule.id] description: "evidence", nothing relayed, decision recorded."""
    reply = await rig.run(message("[reject] 20% off your next order"))
    assert reply == '550 5.7.1 [test.reject] Test rule refusing marked messages: "[reject] 20% off your next order"'
    assert rig.relay.sent == []
    [decision] = rig.store.decisions
    assert decision.outcome == "rejected"


@pytest.mark.parametrize("failure", ["parser", "policy", "state"])
async def test_internal_failure_is_451(rig: Rig, failure: str) -> None:
    """An exception in parse, evaluate or state loading is 451 4.3.0 and a failed decision."""
    subject = "hello"
    if failure == "parser":
        rig.parser.fail = True
    elif failure == "policy":
        subject = "[crash]"
    else:
        rig.store.fail_load = True
    with capture_logs() as logs:
        reply = await rig.run(message(subject))
    assert reply.startswith("451 4.3.0 Temporary internal error (queue id Q1)")
    assert rig.relay.sent == []
    [decision] = rig.store.decisions
    assert decision.outcome == "failed"
    assert decision.error
    [decided] = [e for e in logs if e["event"] == "message_decided"]
    assert decided["action"] is None
    assert decided["reply_code"] == 451


async def test_quarantine_store_failure_is_451() -> None:
    """A quarantine that cannot commit answers 451 4.3.0, never 250."""
    rig = Rig()
    rig.store.fail_quarantine = True
    reply = await rig.run(message("[hold]"))
    assert reply.startswith("451 4.3.0 Could not store the message for review")


async def test_processing_timeout_is_451() -> None:
    """Parse + policy + act beyond processing_timeout answers 451 4.4.5."""
    rig = Rig(server={"processing_timeout": 0.2})
    reply = await rig.run(message("[slow]"))
    assert reply.startswith("451 4.4.5 Processing took too long")
    assert rig.relay.sent == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RelayError(451, "cannot connect to next hop default: refused"), "451 4.4.1 "),
        (RelayError(421, "4.7.0 too busy"), "451 4.7.0 "),
        (RelayError(554, "5.7.1 sender address not registered"), "554 5.7.1 "),
    ],
    ids=["unreachable", "upstream-4xx", "upstream-5xx"],
)
async def test_upstream_failures(rig: Rig, error: RelayError, expected: str) -> None:
    """Unreachable or 4xx upstream: 451; upstream 5xx: passed back as 5xx."""
    rig.relay.error = error
    reply = await rig.run(message())
    assert reply.startswith(expected)
    [decision] = rig.store.decisions
    assert decision.outcome == "failed"


async def test_partial_refusal_sends_dsn_and_logs(rig: Rig) -> None:
    """Some recipients refused upstream: 250 for the others, a DSN to the sender, recipient_refused logged."""
    gone = "gone@marketplace.amazon.de"
    rig.relay.refuse = {gone: (550, "5.1.1 unknown")}
    with capture_logs() as logs:
        reply = await rig.run(message(), rcpts=(BUYER, gone))
    assert reply.startswith("250 2.0.0 Ok: queued as Q1")
    _message_send, dsn_send = rig.relay.sent
    assert dsn_send[1] == ""  # null reverse path (RFC 3464)
    assert dsn_send[2] == (SELLER,)
    assert b"multipart/report" in dsn_send[3]
    assert gone.encode() in dsn_send[3]
    [decision] = rig.store.decisions
    assert decision.refused == {gone: "550 5.1.1 unknown"}
    assert [e["recipient"] for e in logs if e["event"] == "recipient_refused"] == [gone]
    assert any(e["event"] == "dsn_sent" for e in logs)


async def test_from_header_must_be_an_account_sender(rig: Rig) -> None:
    """A From header outside the account's senders is 550 5.7.1 naming the account."""
    reply = await rig.run(message(sender="ceo@other.example"))
    assert reply.startswith("550 5.7.1 From header ceo@other.example is not an authorised sender of account 'helpdesk'")
    assert rig.relay.sent == []
    assert rig.store.decisions[0].outcome == "rejected"


async def test_one_decision_event_without_body_and_pseudonymised() -> None:
    """Exactly one message_decided per message, with fields; recipients pseudonymised; never the body."""
    rig = Rig(logging={"pseudonymize_recipients": True, "pseudonym_key": "k"})
    with capture_logs() as logs:
        await rig.run(message("[hold] x", body="the secret body words\r\n"))
    decided = [e for e in logs if e["event"] == "message_decided"]
    assert len(decided) == 1
    event = decided[0]
    assert event["queue_id"] == "Q1"
    assert event["action"] == "quarantine"
    assert event["outcome"] == "quarantined"
    assert event["rule_ids"] == ["test.hold"]
    assert event["profile"] == "amazon"
    assert event["account"] == "helpdesk"
    assert event["sender"] == SELLER
    assert set(event["durations_ms"]) >= {"parse", "evaluate", "quarantine", "total"}
    [recipient] = event["recipients"]
    assert recipient != BUYER
    assert recipient.endswith("@marketplace.amazon.de")
    assert len(recipient.split("@")[0]) == 16
    assert "secret body" not in repr(logs)


async def test_policy_is_fetched_per_message(rig: Rig) -> None:
    """A hot-reloaded policy applies to the next message (the pipeline holds no instance)."""
    await rig.run(message("[reject]"))

    class Lenient(FakePolicy):
        def evaluate(self, parsed: Any, route: Route, state: Any) -> Any:
            return super().evaluate(parsed, route, state).__class__(action=Action.PASS, profile=route.profile)

    rig.policy = Lenient()
    reply = await rig.run(message("[reject]"))
    assert reply.startswith("250 ")


async def test_decision_log_failure_after_relay_keeps_250(rig: Rig) -> None:
    """If only the decision log fails after the upstream accepted, the sender still gets 250 (no duplicate)."""
    rig.store.fail_record = True
    with capture_logs() as logs:
        reply = await rig.run(message())
    assert reply.startswith("250 ")
    assert any(e["event"] == "decision_record_failed" for e in logs)


class SlowStore(FakeStore):
    """record_decision blocks until released, like an fsync on a busy disk."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def record_decision(self, decision: Decision) -> None:
        self.release.wait(10)
        super().record_decision(decision)


async def test_decision_log_write_does_not_delay_the_reply() -> None:
    """Without state events the reply does not wait for the decision-log commit; drain() does."""
    rig = Rig()
    rig.store = SlowStore()
    rig.pipeline = Pipeline(rig.parser, lambda: rig.policy, rig.relay, rig.store, rig.config)
    envelope = Envelope(queue_id="Q9", mail_from=SELLER, rcpt_tos=(BUYER,), account="helpdesk")
    reply = await asyncio.wait_for(rig.pipeline.run(envelope, rig.policy.route([BUYER]), message()), 5)
    assert reply.code == 250
    assert rig.store.decisions == []  # still queued
    rig.store.release.set()
    await rig.pipeline.drain()
    assert [d.queue_id for d in rig.store.decisions] == ["Q9"]
    rig.pipeline.close()


async def test_review_request_reply_waits_for_its_state_commit() -> None:
    """A relayed review request is answered only once its REVIEW_REQUEST row is committed (crash-safe repeat)."""
    rig = Rig()
    store = SlowStore()
    pipeline = Pipeline(rig.parser, lambda: rig.policy, rig.relay, store, rig.config)
    envelope = Envelope(queue_id="R1", mail_from=SELLER, rcpt_tos=(BUYER,), account="helpdesk")
    raw = message("[review] please leave a review for order 302-1234567-1234567")
    run = asyncio.ensure_future(pipeline.run(envelope, rig.policy.route([BUYER]), raw))
    await asyncio.sleep(0.3)
    assert not run.done()  # relayed, but the reply waits for the blocked commit
    assert len(rig.relay.sent) == 1
    store.release.set()
    reply = await asyncio.wait_for(run, 5)
    assert reply.code == 250
    assert [(e.kind, e.queue_id) for e in store.events if e.kind is EventKind.REVIEW_REQUEST] == [
        (EventKind.REVIEW_REQUEST, "R1")
    ]
    pipeline.close()


async def test_queued_state_events_are_seen_by_the_next_message() -> None:
    """State events still queued for a slow store are merged into the next message's state."""
    rig = Rig()
    store = SlowStore()
    seen: list[int] = []

    class Counting(FakePolicy):
        def evaluate(self, parsed: Any, route: Route, state: Any) -> Any:
            seen.append(state.proactive_count(BUYER.lower(), datetime(2000, 1, 1, tzinfo=UTC)))
            return super().evaluate(parsed, route, state)

    policy = Counting()
    pipeline = Pipeline(rig.parser, lambda: policy, rig.relay, store, rig.config)
    route = policy.route([BUYER])
    for number in (1, 2):
        envelope = Envelope(queue_id=f"P{number}", mail_from=SELLER, rcpt_tos=(BUYER,), account="helpdesk")
        reply = await asyncio.wait_for(pipeline.run(envelope, route, message("[proactive] hello")), 5)
        assert reply.code == 250  # neither reply waited for the blocked store
    assert seen == [0, 1]  # the second message saw the first one's queued PROACTIVE event
    assert store.events == []
    store.release.set()
    await pipeline.drain()
    assert sorted(e.queue_id for e in store.events) == ["P1", "P2"]
    pipeline.close()


@pytest.mark.parametrize(("period_days", "counted"), [(30, 1), (None, 0)])
async def test_buyer_history_is_read_over_the_policy_s_period_only(period_days: int | None, counted: int) -> None:
    """The store is asked for the buyer's events since now minus the cap period, or for none without a cap."""
    rig = Rig()
    now = datetime.now(UTC)
    rig.store.events += [
        StateEvent(EventKind.PROACTIVE, BUYER.lower(), now - timedelta(days=40), "OLD"),
        StateEvent(EventKind.PROACTIVE, BUYER.lower(), now - timedelta(days=10), "RECENT"),
    ]
    seen: list[int] = []

    class Counting(FakePolicy):
        def evaluate(self, parsed: Any, route: Route, state: Any) -> Any:
            seen.append(state.proactive_count(BUYER.lower(), datetime(2000, 1, 1, tzinfo=UTC)))
            return super().evaluate(parsed, route, state)

    period = timedelta(days=period_days) if period_days is not None else None
    rig.policy = Counting(needs=PolicyNeeds(buyer_period=period))
    assert (await rig.run(message("[proactive] hello"))).startswith("250")
    assert seen == [counted]


async def test_policy_that_reads_no_content_skips_the_full_parse() -> None:
    """A profile whose rules read no content is decided on the headers alone; still one decision."""
    rig = Rig()
    rig.policy.requirements = PolicyNeeds(content=False, state=False)
    reply = await rig.run(message())
    assert reply.startswith("250 2.0.0 Ok: queued as Q1")
    assert rig.parser.calls == 0
    assert rig.store.state_reads == 0
    [decision] = rig.store.decisions
    assert decision.outcome == "relayed"
    assert decision.subject


async def test_from_header_is_checked_on_the_headers_only_path() -> None:
    """The From check still runs when only the headers are parsed."""
    rig = Rig()
    rig.policy.requirements = PolicyNeeds(content=False, state=False)
    reply = await rig.run(message(sender="intruder@elsewhere.example"), mail_from=SELLER)
    assert reply.startswith("550 5.7.1")
    assert rig.relay.sent == []


class CountingStore(FakeStore):
    """Counts commits (record_batch calls); each takes ``seconds``, like a commit with an fsync."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.commits = 0

    def record_batch(self, batch: Any, events: Any) -> None:
        time.sleep(self.seconds)
        self.commits += 1
        super().record_batch(batch, events)


def relayed(queue_id: str) -> Decision:
    envelope = Envelope(queue_id=queue_id, mail_from=SELLER, rcpt_tos=(BUYER,), account="helpdesk")
    verdict = Verdict(action=Action.PASS, profile="amazon")
    return Decision(queue_id=queue_id, decided_at=datetime.now(UTC), envelope=envelope, verdict=verdict)


async def test_decision_writes_gather_into_few_commits() -> None:
    """Decisions arriving within the writer's linger share one commit instead of one each."""
    rig = Rig()
    store = CountingStore()
    pipeline = Pipeline(rig.parser, lambda: rig.policy, rig.relay, store, rig.config)
    for number in range(20):  # one decision every millisecond or so: the writer is idle when each arrives
        await pipeline._record_quietly(relayed(f"G{number}"))
        await asyncio.sleep(0.001)
    await pipeline.drain()
    assert len(store.decisions) == 20
    assert store.commits <= 10  # one per message without the linger
    pipeline.close()


async def test_a_waited_write_is_not_held_back_by_a_busy_writer() -> None:
    """A review request's reply waits for the commit of its own round, not for the writer to run dry."""
    rig = Rig()
    store = CountingStore(seconds=0.02)
    pipeline = Pipeline(rig.parser, lambda: rig.policy, rig.relay, store, rig.config)
    stop = asyncio.Event()

    async def stream() -> None:  # a busy worker: a decision every 2 ms, for as long as the test runs
        number = 0
        while not stop.is_set():
            await pipeline._record_quietly(relayed(f"S{number}"))
            number += 1
            await asyncio.sleep(0.002)

    busy = asyncio.ensure_future(stream())
    await asyncio.sleep(0.1)
    envelope = Envelope(queue_id="R2", mail_from=SELLER, rcpt_tos=(BUYER,), account="helpdesk")
    raw = message("[review] please leave a review for order 302-1234567-1234567")
    started = time.perf_counter()
    reply = await asyncio.wait_for(pipeline.run(envelope, rig.policy.route([BUYER]), raw), 5)
    waited = time.perf_counter() - started
    committed = [e.queue_id for e in store.events if e.kind is EventKind.REVIEW_REQUEST]
    stop.set()
    await busy
    assert reply.code == 250
    assert committed == ["R2"]  # committed before the reply
    assert waited < 1.0  # not the 30 s store timeout of a writer that never runs dry
    await pipeline.drain()
    pipeline.close()


async def test_writes_a_reply_waits_for_skip_the_linger() -> None:
    """A quarantine commit (or drain) submitted while decisions linger does not wait out the linger."""
    rig = Rig()
    store = CountingStore()
    pipeline = Pipeline(rig.parser, lambda: rig.policy, rig.relay, store, rig.config)
    pipeline.write_linger = 2.0
    await pipeline._record_quietly(relayed("L1"))  # starts a flush that lingers 2 s
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await pipeline._write(lambda: None)
    assert time.perf_counter() - started < 1.0
    assert [d.queue_id for d in store.decisions] == ["L1"]  # the lingering batch went first
    pipeline.close()
