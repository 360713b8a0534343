"""The per-message pipeline: parse -> evaluate -> act, and the reply it earns.

:class:`Pipeline` composes the seams of :mod:`gateway.pipeline_types`. The SMTP
handler calls :meth:`Pipeline.run` at the end of DATA and sends back the
:class:`~gateway.smtp.replies.Reply` it returns. The order of effects is the
sender's contract (DESIGN.md "Reply semantics"):

- PASS: relay upstream; answer 250 only once the upstream accepted. Recipients
  refused upstream while others were accepted get a DSN (RFC 3464) sent to the
  envelope sender and a ``recipient_refused`` log event. A review request's 250
  also waits for its state row (``review.repeat`` survives a crash).
- QUARANTINE: commit message and decision to the store (in a thread); answer 250
  only after the commit returned.
- REJECT: ``550 5.7.1 [rule.id] description: "evidence"``.
- anything else (exception, ``processing_timeout``, store or upstream trouble):
  451, so the sender keeps the message and retries; an upstream 5xx stays 5xx.

Before the policy runs, the From header is checked against the account's
authorised senders (MAIL FROM was checked at MAIL time).

Every message yields exactly one :class:`~gateway.model.Decision`: written to the
store's decision log (the quarantine writes it in its own transaction) and
logged as one ``message_decided`` event. Store writes go through one writer
thread; a decision-log write that nothing depends on is queued behind the reply
rather than delaying it (see :meth:`Pipeline._record_quietly`); state events
still queued are merged into what this worker's next messages read. When processing fails before the
policy decided, the decision carries an empty PASS verdict and the outcome
``failed``; ``outcome`` is what happened.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from gateway.config import Config
from gateway.logging import Pseudonymizer
from gateway.mime.types import ParsedMessage
from gateway.model import Action, Decision, Envelope, Route, Verdict
from gateway.pipeline_types import Parser, Policy, PolicyNeeds, Relay, RelayError, Store
from gateway.smtp import replies
from gateway.smtp.replies import Reply
from gateway.smtp.trace import received_header
from gateway.state import EventKind, MemoryState, StateEvent, delivery_events
from gateway.upstream.dsn import build_dsn

log = structlog.get_logger("gateway.pipeline")

T = TypeVar("T")

#: Seconds the pipeline waits for a store write it must not skip ahead of (state events).
RECORD_TIMEOUT = 30.0
#: Decision-log writes allowed to queue behind the reply before the pipeline waits for them.
MAX_PENDING_WRITES = 200
#: Seconds the writer thread lets decision-log writes gather before it commits them.
#: One commit per message costs a busy worker most of its throughput (the commit,
#: the thread hand-off and the GIL traffic of a writer waking per message); a few
#: milliseconds of lingering turn that into one commit per handful of messages.
#: Nothing waits on these writes, except a review request's state row and
#: quarantine commits, which cut the linger short.
WRITE_LINGER = 0.01


def _event_key(event: StateEvent) -> tuple[str, str, str]:
    return (event.kind.value, event.key, event.queue_id)


class _Stages:
    """Wall-clock milliseconds per stage, for the decision and the log."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    async def run(self, stage: str, awaitable: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await awaitable
        finally:
            self.durations[stage] = round((time.perf_counter() - started) * 1000, 3)


class Pipeline:
    """Parse, evaluate and act on one message; returns the SMTP reply it deserves."""

    def __init__(
        self,
        parser: Parser,
        policy: Callable[[], Policy],
        relay: Relay,
        store: Store,
        config: Config,
    ) -> None:
        self._parser = parser
        self._policy = policy
        self._relay = relay
        self._store = store
        self._config = config
        self._pseudonyms = Pseudonymizer(config.logging)
        # Every store write goes through one thread: SQLite takes one writer at a
        # time anyway, and writers queued here cost nothing, while writers racing
        # for its lock in many threads burn CPU on retries and the GIL.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        # Decision-log writes waiting for the writer thread, committed together.
        self._batch: list[tuple[Decision, Sequence[StateEvent], list[tuple[str, str, str]]]] = []
        self._batch_lock = threading.Lock()
        # Done when the writes now in _batch are committed (or their failure logged).
        self._batch_done: concurrent.futures.Future[None] = concurrent.futures.Future()
        # True from the submit of a flush until it finds the batch empty (under the lock),
        # so a write appended while a flush is finishing is never left behind.
        self._flushing = False
        # Set when a write must not linger (a reply waits for it); see _flush_batches.
        self._hurry = threading.Event()
        # Writes submitted to the writer thread that have not started (a reply waits for each).
        self._urgent = 0
        self.write_linger = WRITE_LINGER
        # State events queued for the store but not committed yet, by (kind, key, queue id).
        self._unwritten: dict[tuple[str, str, str], StateEvent] = {}
        self._unwritten_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Finish queued store writes and stop the writer thread (blocking; call after serving)."""
        self._closed = True
        self._writer.shutdown(wait=True)

    async def _write(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the writer thread, ahead of any lingering decision-log flush."""

        def started() -> T:
            with self._batch_lock:
                self._urgent -= 1
            return function()

        with self._batch_lock:
            self._urgent += 1
        self._hurry.set()  # a reply waits for this write: a flush in progress must not linger
        return await asyncio.get_running_loop().run_in_executor(self._writer, contextvars.copy_context().run, started)

    async def run(self, envelope: Envelope, route: Route, raw: bytes) -> Reply:
        """Process one received message and return the reply for the client."""
        started = time.perf_counter()
        stages = _Stages()
        undecided = Verdict(action=Action.PASS, profile=route.profile)
        decision = self._decision(envelope, undecided, raw, stages, outcome="failed")
        deadline = asyncio.timeout(self._config.server.processing_timeout)
        try:
            async with deadline:
                reply, decision = await self._process(envelope, route, raw, stages)
        except asyncio.CancelledError:
            # The connection was lost or the server is stopping: no reply will be
            # sent, the client retries. Still one decision for this message.
            decision = replace(decision, error="cancelled before a reply was sent", durations_ms=stages.durations)
            self._log(decision, None, stages.durations, decided=False)
            await asyncio.shield(self._record_quietly(decision))
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                log.error("message_timed_out", queue_id=envelope.queue_id)
                reply = replies.processing_timeout(envelope.queue_id)
                error = f"processing timeout after {self._config.server.processing_timeout} s"
            else:
                log.exception("message_failed", queue_id=envelope.queue_id)
                reply = replies.internal_error(envelope.queue_id)
                error = f"{type(exc).__name__}: {exc}"[:500]
            decision = replace(decision, error=error, durations_ms=stages.durations)
            await self._record_quietly(decision)
        stages.durations["total"] = round((time.perf_counter() - started) * 1000, 3)
        self._log(decision, reply, stages.durations, decided=decision.verdict is not undecided)
        return reply

    # --- the stages --------------------------------------------------------------

    async def _process(self, envelope: Envelope, route: Route, raw: bytes, stages: _Stages) -> tuple[Reply, Decision]:
        policy = self._policy()  # once per message: policies hot-reload
        needs = policy.needs(route.profile)
        if needs.content:
            parsed = await stages.run("parse", self._parser.parse(raw))
        else:
            # No active rule reads the content: the headers (for the From check
            # and the reply/proactive signal) are all that is needed.
            started = time.perf_counter()
            parsed = self._parser.parse_headers(raw)
            stages.durations["parse"] = round((time.perf_counter() - started) * 1000, 3)
        refusal = self._check_from_header(envelope, parsed)
        if refusal is not None:
            verdict = Verdict(action=Action.REJECT, profile=route.profile)
            decision = self._decision(envelope, verdict, raw, stages, "rejected", parsed, error=refusal[1])
            await self._record_quietly(decision)
            return refusal[0], decision

        order_ids = list(dict.fromkeys(o.value for o in parsed.order_ids))

        submitted = time.perf_counter()

        def decide() -> Verdict:
            # One thread hop for both: the state read is blocking I/O, and evaluation is
            # pure CPU work that must not stall every other session on a hard message.
            started = time.perf_counter()
            # Time spent waiting for a free thread: a sign of a saturated worker.
            stages.durations["queued"] = round((started - submitted) * 1000, 3)
            state = self._load_state(order_ids, route.buyer, needs) if needs.state else MemoryState()
            loaded = time.perf_counter()
            stages.durations["state"] = round((loaded - started) * 1000, 3)
            verdict = policy.evaluate(parsed, route, state)
            stages.durations["evaluate"] = round((time.perf_counter() - loaded) * 1000, 3)
            return verdict

        if needs.content or needs.state:
            verdict = await stages.run("decide", asyncio.to_thread(decide))
        else:
            # Nothing to read and nothing heavy to evaluate: no thread hop.
            started = time.perf_counter()
            verdict = policy.evaluate(parsed, route, MemoryState())
            stages.durations["decide"] = round((time.perf_counter() - started) * 1000, 3)
        data = received_header(envelope, self._config.server.hostname) + raw

        if verdict.action is Action.REJECT:
            decision = self._decision(envelope, verdict, raw, stages, "rejected", parsed)
            await self._record_quietly(decision)
            return replies.rejected(verdict.primary), decision
        if verdict.action is Action.QUARANTINE:
            return await self._quarantine(envelope, verdict, raw, data, parsed, stages)
        return await self._pass(envelope, route, verdict, raw, data, parsed, stages)

    def _check_from_header(self, envelope: Envelope, parsed: ParsedMessage) -> tuple[Reply, str] | None:
        """The From header must be one of the account's senders, like MAIL FROM."""
        if envelope.account is None:
            return None
        account = self._config.account(envelope.account)
        if account is None:  # the account vanished from a reloaded config: refuse, do not guess
            return replies.auth_required(), f"account {envelope.account!r} no longer configured"
        if account.sender_allowed(parsed.from_addr) and parsed.from_addr:
            return None
        why = "From header missing or unparsable" if not parsed.from_addr else "From header not authorised"
        reply = replies.sender_not_authorised(account.name, parsed.from_addr, "From header", account.senders)
        return reply, why

    async def _quarantine(
        self,
        envelope: Envelope,
        verdict: Verdict,
        raw: bytes,
        data: bytes,
        parsed: ParsedMessage,
        stages: _Stages,
    ) -> tuple[Reply, Decision]:
        decision = self._decision(envelope, verdict, raw, stages, "quarantined", parsed)
        try:
            await stages.run("quarantine", self._write(lambda: self._store.quarantine(decision, data)))
        except Exception as exc:
            log.exception("quarantine_failed", queue_id=envelope.queue_id)
            failed = replace(decision, outcome="failed", error=f"quarantine failed: {type(exc).__name__}: {exc}"[:500])
            await self._record_quietly(failed)
            return replies.store_failed(envelope.queue_id), failed
        # The store wrote the decision with the quarantined message, in one transaction.
        return replies.held(envelope.queue_id), replace(decision, durations_ms=stages.durations)

    async def _pass(
        self,
        envelope: Envelope,
        route: Route,
        verdict: Verdict,
        raw: bytes,
        data: bytes,
        parsed: ParsedMessage,
        stages: _Stages,
    ) -> tuple[Reply, Decision]:
        try:
            result = await stages.run(
                "relay", self._relay.relay(route.upstream, envelope.mail_from, envelope.rcpt_tos, data)
            )
        except RelayError as exc:
            decision = self._decision(envelope, verdict, raw, stages, "failed", parsed, error=f"upstream: {exc}"[:500])
            await self._record_quietly(decision)
            return replies.upstream_failed(exc), decision
        refused = {rcpt: f"{code} {text}" for rcpt, (code, text) in result.refused.items()}
        decision = self._decision(envelope, verdict, raw, stages, "relayed", parsed, refused=refused)
        if result.refused:
            await self._notify_refused(envelope, route, result.refused, raw)
        events = self._state_events(verdict, route, envelope.queue_id)
        # A review request's 250 waits for its state row: review.repeat must remember it
        # even if the gateway is killed right after the reply (one commit, once per order).
        remember = any(e.kind is EventKind.REVIEW_REQUEST for e in events)
        await self._record_quietly(decision, events, wait=remember)
        return replies.relayed(envelope.queue_id, result.reply), decision

    # --- after-effects -----------------------------------------------------------

    async def _notify_refused(
        self, envelope: Envelope, route: Route, refused: dict[str, tuple[int, str]], raw: bytes
    ) -> None:
        """Tell the sender about recipients the upstream refused (the others got the message)."""
        for rcpt, (code, text) in refused.items():
            log.warning(
                "recipient_refused",
                queue_id=envelope.queue_id,
                recipient=self._pseudonyms.address(rcpt),
                upstream=route.upstream,
                code=code,
                error=text,
            )
        if not envelope.mail_from:
            # RFC 3464 / RFC 5321 6.1: never send a notification to the null sender.
            log.warning("dsn_skipped", queue_id=envelope.queue_id, reason="null sender")
            return
        notice_upstream = self._config.notices.upstream
        dsn = build_dsn(
            envelope=envelope,
            refused=refused,
            original=raw,
            reporting_host=self._config.server.hostname,
            upstream=self._config.upstreams[route.upstream].host,
            from_address=self._config.notice_from,
        )
        try:
            await self._relay.relay(notice_upstream, "", [envelope.mail_from], dsn)
        except RelayError as exc:
            log.error("dsn_failed", queue_id=envelope.queue_id, upstream=notice_upstream, error=str(exc))
            return
        log.info("dsn_sent", queue_id=envelope.queue_id, upstream=notice_upstream, refused=len(refused))

    @staticmethod
    def _state_events(verdict: Verdict, route: Route, queue_id: str) -> list[StateEvent]:
        """What per-order/per-buyer state remembers once a message actually left.

        The same events as a release from quarantine (:func:`gateway.state.delivery_events`);
        the route's buyer stands in when the policy did not name one.
        """
        if verdict.buyer is None and route.buyer is not None:
            verdict = replace(verdict, buyer=route.buyer)
        return delivery_events(verdict, queue_id, datetime.now(UTC))

    async def _record_quietly(
        self, decision: Decision, events: Sequence[StateEvent] = (), *, wait: bool = False
    ) -> None:
        """Write the decision (and state events) after the reply is settled; failures are only logged.

        The decision log is an audit record, not the message: its commit (an fsync on
        SQLite) need not delay the reply. The write is queued for the writer thread,
        which commits everything queued together (:meth:`_flush_batches`), and the
        pipeline moves on; only when ``MAX_PENDING_WRITES`` writes are already
        queued does it wait (backpressure instead of unbounded memory). State events
        not yet committed stay visible to this worker's next messages through
        :meth:`_with_unwritten`, so a second review request for an order is caught
        even while the first one's event is still queued. With ``wait`` it returns
        only after the writer committed this write (or logged why it could not).
        """
        keys = [_event_key(e) for e in events]
        with self._unwritten_lock:
            self._unwritten.update(zip(keys, events, strict=True))
        with self._batch_lock:
            self._batch.append((decision, events, keys))
            waiting = len(self._batch)
            done = self._batch_done
            if not self._flushing:
                # Nothing is flushing: start the writer. A flush already running picks
                # this write up in its next round.
                self._flushing = True
                self._writer.submit(contextvars.copy_context().run, self._flush_batches)
        if waiting < MAX_PENDING_WRITES and not wait:
            return  # fire and forget: the reply does not wait for the audit record
        self._hurry.set()
        # The reply depends on this write, or too much is queued (backpressure instead of
        # unbounded growth): wait for the round that commits it (not for the writer to
        # run dry, which a busy worker may never let happen).
        try:
            async with asyncio.timeout(RECORD_TIMEOUT):
                await asyncio.shield(asyncio.wrap_future(done))
        except TimeoutError:
            log.error("decision_record_failed", queue_id=decision.queue_id, error="store write timed out")

    def _flush_batches(self) -> None:
        """Writer thread: commit everything queued, in rounds, until nothing is left.

        A busy worker's writes share one transaction (one fsync on SQLite) instead of
        paying one each: each round first lingers up to ``write_linger`` seconds so
        writes can gather, unless a reply waits (``_hurry``). If a batch fails, its
        writes are retried one by one so a single bad record cannot cost the others.
        """
        while True:
            with self._batch_lock:
                if not self._batch:
                    self._flushing = False
                    return
                linger = not (self._closed or self._urgent)
            if linger:
                self._hurry.wait(self.write_linger)
            self._hurry.clear()
            with self._batch_lock:
                batch, self._batch = self._batch, []
                done, self._batch_done = self._batch_done, concurrent.futures.Future()
            try:
                self._store.record_batch([d for d, _, _ in batch], [e for _, events, _ in batch for e in events])
            except Exception:
                for decision, events, _ in batch:
                    try:
                        self._store.record_decision(decision)
                        if events:
                            self._store.record_events(events)
                    except Exception:
                        log.exception("decision_record_failed", queue_id=decision.queue_id, outcome=decision.outcome)
            finally:
                with self._unwritten_lock:
                    for _, _, keys in batch:
                        for key in keys:
                            self._unwritten.pop(key, None)
                done.set_result(None)

    def _load_state(self, order_ids: Sequence[str], buyer: str | None, needs: PolicyNeeds) -> MemoryState:
        """The stored state about these orders (and the buyer, over the cap's period), plus queued events."""
        now = datetime.now(UTC)
        if needs.buyer_period is None:
            # No active rule counts this buyer's messages: do not read them.
            stored = self._store.load_state(order_ids, None, now)
        else:
            stored = self._store.load_state(order_ids, buyer, now - needs.buyer_period)
        return self._with_unwritten(stored, order_ids, buyer)

    def _with_unwritten(self, state: MemoryState, order_ids: Sequence[str], buyer: str | None) -> MemoryState:
        """``state`` plus this worker's state events that are still queued for the store."""
        with self._unwritten_lock:
            queued = [e for e in self._unwritten.values() if e.key in order_ids or e.key == buyer]
        if queued:
            present = {_event_key(e) for e in state.events}
            state.record(e for e in queued if _event_key(e) not in present)
        return state

    async def drain(self) -> None:
        """Wait until every queued store write is done (tests, and before closing)."""
        if not self._closed:
            await self._write(lambda: None)

    # --- records -----------------------------------------------------------------

    def _decision(
        self,
        envelope: Envelope,
        verdict: Verdict,
        raw: bytes,
        stages: _Stages,
        outcome: str,
        parsed: ParsedMessage | None = None,
        *,
        error: str = "",
        refused: dict[str, str] | None = None,
    ) -> Decision:
        return Decision(
            queue_id=envelope.queue_id,
            decided_at=datetime.now(UTC),
            envelope=envelope,
            verdict=verdict,
            subject=parsed.subject if parsed is not None else "",
            size=len(raw),
            durations_ms=dict(stages.durations),
            outcome=outcome,
            error=error,
            refused=refused or {},
        )

    def _log(self, decision: Decision, reply: Reply | None, durations: dict[str, float], *, decided: bool) -> None:
        envelope = decision.envelope
        verdict = decision.verdict
        log.info(
            "message_decided",
            queue_id=decision.queue_id,
            peer=envelope.peer,
            account=envelope.account,
            sender=envelope.mail_from,
            recipients=self._pseudonyms.addresses(envelope.rcpt_tos),
            profile=verdict.profile,
            # None when processing failed before the policy decided.
            action=verdict.action.value if decided else None,
            outcome=decision.outcome,
            rule_ids=list(verdict.rule_ids),
            monitor_rule_ids=[f.rule for f in verdict.findings if f.monitor],
            size=decision.size,
            reply_code=reply.code if reply is not None else None,
            reply_status=reply.status if reply is not None else None,
            error=decision.error or None,
            refused=len(decision.refused),
            durations_ms=durations,
        )
