"""The crash scenario shared by ``tests/integration/test_crash.py`` and ``bench/crash.py``.

A real ``gateway serve`` (its own process group, the shipped policies, a config
file naming the store) relays to a real aiosmtpd capture hop on loopback.
Several smtplib connections send numbered messages, most of which the shipped
policy quarantines (an external download link in mail to an Amazon buyer), some
of which it relays (a plain answer) or refuses (a request to remove a review).
Once ``kill_after`` messages were answered 250 the whole process group gets
SIGKILL, mid-traffic. The gateway is started again on the same store, the
client sends what it had not sent and retries what got no final answer (as an
MTA would), and the gateway is stopped.

Then the store is opened directly and the capture hop is read: every message
the client saw answered 250 must be in the quarantine (when the reply said
"held for review") or at the next hop (when it was relayed). Each message is
found by the token in its Subject and Message-ID.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.store import open_store
from gateway.store.records import QuarantineQuery
from tests.support.servers import CaptureHop

ROOT = Path(__file__).resolve().parents[2]
SELLER = "support@seller.example"
_LISTEN = re.compile(r"server_started\b.*?listen[\"=:\s]+\"?127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class CrashPlan:
    """How much traffic, over how many connections, and when to kill."""

    messages: int = 200
    connections: int = 4
    kill_after: int = 80  # 250 replies seen before the SIGKILL
    workers: int = 1
    run_id: str = field(default_factory=lambda: os.urandom(4).hex())


@dataclass
class Outcome:
    """The last answer the client got for one message (``code`` 0: no final answer)."""

    code: int = 0
    text: str = ""
    tries: int = 0
    accepted_before_kill: bool = False


@dataclass
class CrashResult:
    """What the client saw and what was found afterwards."""

    backend: str
    plan: CrashPlan
    outcomes: dict[int, Outcome]
    before_kill: Counter[str]  # reply classes seen before the kill
    quarantined: dict[int, int]  # message number -> copies in the quarantine
    relayed: dict[int, int]  # message number -> copies at the next hop
    restart_seconds: float
    missing: list[int]

    @property
    def accepted(self) -> list[int]:
        """Messages whose final answer was 250."""
        return sorted(n for n, o in self.outcomes.items() if o.code == 250)

    def summary(self) -> dict[str, int]:
        """The counts reported by the test and the bench."""
        accepted_before = [n for n, o in self.outcomes.items() if o.accepted_before_kill]
        return {
            "sent": len(self.outcomes),
            "answered before kill": sum(self.before_kill.values()),
            "250 before kill": self.before_kill["250"],
            "4xx before kill": self.before_kill["4xx"],
            "5xx before kill": self.before_kill["5xx"],
            "no answer (killed mid-message)": self.before_kill["none"],
            "accepted in all (250)": len(self.accepted),
            "accepted before kill, found": sum(1 for n in accepted_before if self.found(n)),
            "rejected by policy (550)": sum(1 for o in self.outcomes.values() if o.code >= 500),
            "found in quarantine": len(self.quarantined),
            "found at next hop": len(self.relayed),
            "stored twice (retried after a lost reply)": sum(
                1 for n in self.outcomes if self.quarantined.get(n, 0) + self.relayed.get(n, 0) > 1
            ),
            "missing": len(self.missing),
        }

    def found(self, number: int) -> bool:
        """Whether message ``number`` is where its 250 said it would be."""
        outcome = self.outcomes[number]
        where = self.quarantined if "held for review" in outcome.text else self.relayed
        return where.get(number, 0) > 0


def message(plan: CrashPlan, number: int) -> tuple[str, bytes]:
    """Message ``number``: its recipient and bytes. Nine in ten quarantine, some relay, some are refused."""
    token = f"crash-{plan.run_id}-{number:06d}"
    rcpt = f"b{number:06d}@marketplace.amazon.de"
    order = f"302-{number:07d}-{number % 9_999_999:07d}"
    headers = [f"From: Support <{SELLER}>", f"To: {rcpt}", f"Message-ID: <{token}@seller.example>"]
    if number % 20 == 0:
        kind = "answer"
        headers += [f"Subject: Re: your question {token}", "In-Reply-To: <q-1@marketplace.amazon.de>"]
        body = "Hello,\r\n\r\nyes, the kettle fits the stand you ordered.\r\n\r\nKind regards\r\n"
    elif number % 20 == 10:
        kind = "refused"
        headers += [f"Subject: Order {order} {token}"]
        body = "Hello,\r\n\r\nplease remove your negative review, we sent a new kettle.\r\n"
    else:
        kind = "held"
        headers += [f"Subject: Manual for order {order} {token}"]
        body = (
            "Hello,\r\n\r\nthe assembly manual for your kettle is here:\r\n"
            f"https://downloads.kettle-shop.example/manuals/{number}.pdf\r\n\r\nKind regards\r\n"
        )
    del kind  # the policy decides; the reply says what it decided
    headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return rcpt, ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def write_config(directory: Path, capture_port: int, database_url: str | None, workers: int) -> Path:
    """A gateway config: loopback account, the capture hop as upstream, the given store."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    store = f'[store]\ndatabase_url = "{database_url}"\n' if database_url else ""
    path = directory / "gateway.toml"
    path.write_text(
        f"""
data_dir = "{data}"
[server]
listen = "127.0.0.1:0"
hostname = "gw.crash.test"
workers = {workers}
shutdown_grace = 5.0
[logging]
format = "json"
[[accounts]]
name = "helpdesk"
networks = ["127.0.0.0/8"]
senders = ["@seller.example"]
[upstreams.default]
host = "127.0.0.1"
port = {capture_port}
tls = "none"
timeout = 10.0
{store}""",
        encoding="utf-8",
    )
    return path


class Gateway:
    """``python -m gateway serve`` in its own process group, so one SIGKILL takes every worker."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        # Earlier runs share the log: only what this process writes after here counts.
        self._offset = log_path.stat().st_size if log_path.exists() else 0
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop/kill)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        self.port = 0

    def wait_started(self, timeout: float = 90.0) -> Gateway:
        """Wait for ``server_started`` (this run's, not an earlier run's in the same log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._offset)
                match = _LISTEN.search(handle.read().decode(errors="replace"))
            if match:
                self.port = int(match.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: see {self.log_path}")
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not start: see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole process group (supervisor and workers) at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit (queued store writes are finished)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class _Sender:
    """Client connections taking message numbers from a shared queue until it is empty or the server dies."""

    def __init__(self, plan: CrashPlan, numbers: list[int], outcomes: dict[int, Outcome]) -> None:
        self.plan = plan
        self._numbers: Iterator[int] = iter(numbers)
        self._lock = threading.Lock()
        self.outcomes = outcomes
        self.accepted = 0
        self.answers: Counter[str] = Counter()
        self.enough = threading.Event()  # kill_after accepted messages seen

    def _next(self) -> int | None:
        with self._lock:
            return next(self._numbers, None)

    def _answer(self, number: int, code: int, text: str) -> None:
        with self._lock:
            outcome = self.outcomes[number]
            outcome.code, outcome.text = code, text
            self.answers[
                "250" if code == 250 else "4xx" if 400 <= code < 500 else "5xx" if code >= 500 else "none"
            ] += 1
            if code == 250:
                self.accepted += 1
                if self.accepted >= self.plan.kill_after:
                    self.enough.set()

    def connection(self, port: int) -> None:
        """One client session: many messages on one connection, reconnecting after a 4xx/5xx reset."""
        try:
            client = smtplib.SMTP("127.0.0.1", port, timeout=60)
            client.ehlo("helpdesk.crash.test")
        except (OSError, smtplib.SMTPException):
            return
        try:
            while (number := self._next()) is not None:
                rcpt, data = message(self.plan, number)
                self.outcomes[number].tries += 1
                try:
                    code, reply = client.mail(SELLER)
                    if code == 250:
                        code, reply = client.rcpt(rcpt)
                    if code == 250:
                        code, reply = client.data(data)
                    else:
                        client.rset()
                except (OSError, smtplib.SMTPException):
                    # The server is gone: this message has no final answer (the client keeps it).
                    self._answer(number, 0, "")
                    return
                self._answer(number, code, reply.decode(errors="replace"))
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def run(self, port: int, kill: Gateway | None = None) -> None:
        """Run the connections; with ``kill``, SIGKILL it once ``kill_after`` messages were accepted."""
        threads = [threading.Thread(target=self.connection, args=(port,)) for _ in range(self.plan.connections)]
        for thread in threads:
            thread.start()
        if kill is not None:
            while not self.enough.wait(0.01):
                if not any(t.is_alive() for t in threads):
                    break
            kill.kill()
        for thread in threads:
            thread.join(120)


def _tokens(blobs: Iterator[bytes], run_id: str) -> Counter[int]:
    found: Counter[int] = Counter()
    for blob in blobs:
        match = re.search(rb"crash-" + run_id.encode() + rb"-(\d{6})", blob)
        if match:
            found[int(match.group(1))] += 1
    return found


def _quarantined_raw(database_url: str) -> Iterator[bytes]:
    store = open_store(database_url)
    try:
        for offset in itertools.count(0, 200):
            page = store.list_quarantined(QuarantineQuery(limit=200, offset=offset))
            for record in page.items:
                yield store.raw(record.id)
            if offset + 200 >= page.total:
                return
    finally:
        store.close()


def run_crash(plan: CrashPlan, directory: Path, capture: CaptureHop, database_url: str | None = None) -> CrashResult:
    """Run the scenario in ``directory`` (config, data, logs) and collect what was found."""
    config = write_config(directory, capture.port, database_url, plan.workers)
    url = database_url or f"sqlite:///{(directory / 'data' / 'gateway.db').resolve()}"
    log_path = directory / "gateway.log"
    outcomes = {n: Outcome() for n in range(1, plan.messages + 1)}

    first = Gateway(config, log_path).wait_started()
    sender = _Sender(plan, list(outcomes), outcomes)
    sender.run(first.port, kill=first)
    before_kill = Counter(sender.answers)
    for outcome in outcomes.values():
        outcome.accepted_before_kill = outcome.code == 250

    started = time.monotonic()
    second = Gateway(config, log_path).wait_started()
    restart_seconds = time.monotonic() - started
    # The client retries what got no final or a temporary answer, and sends what it had not sent yet.
    retry = [n for n, o in outcomes.items() if o.code == 0 or 400 <= o.code < 500]
    _Sender(plan, retry, outcomes).run(second.port)
    if second.stop() != 0:
        raise RuntimeError(f"the restarted gateway did not stop cleanly: see {log_path}")

    quarantined = dict(_tokens(_quarantined_raw(url), plan.run_id))
    relayed = dict(_tokens(iter(m.data for m in capture.messages), plan.run_id))
    result = CrashResult(
        backend=url.partition(":")[0].partition("+")[0],
        plan=plan,
        outcomes=outcomes,
        before_kill=before_kill,
        quarantined=quarantined,
        relayed=relayed,
        restart_seconds=restart_seconds,
        missing=[],
    )
    result.missing = [n for n in result.accepted if not result.found(n)]
    return result
