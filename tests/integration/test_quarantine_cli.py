"""The quarantine CLI against a real ``gateway serve --dev``: SMTP in, review from the shell, next hop out.

One server for the module (``--dev`` with its embedded capture next hop on a
known port and SQLite under a temporary data directory); messages go in with
smtplib; every ``gateway`` command runs as its own process
(``python -m gateway ... --dev --data-dir D --capture-port P``) on the same
data directory, as an operator's would.
"""

from __future__ import annotations

import json
import secrets
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import dev_config
from gateway.store import open_store
from gateway.store.records import AuditEntry, QuarantineStatus
from tests.storekit import PostgresSchemas, decision, postgres, raw_message
from tests.support.process import GatewayProcess
from tests.support.servers import CaptureHop, free_port

__all__ = ["postgres"]  # the storekit fixture, used by the PostgreSQL test

SENDER = "support@seller.example"
BUYER = "0a1b2c3d4e5f@marketplace.amazon.de"


@dataclass
class Dev:
    """The running server and how to reach its state."""

    process: GatewayProcess
    data_dir: Path
    capture_port: int

    def gateway(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess[bytes]:
        """``python -m gateway ARGS`` on the server's data directory."""
        dev = ["--dev", "--data-dir", str(self.data_dir), "--capture-port", str(self.capture_port), "--user", user]
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args, *dev], capture_output=True, timeout=120, check=False
        )

    def json(self, *args: str) -> Any:
        result = self.gateway(*args, "--json")
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)

    def captured(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.data_dir / "captured").glob("*.eml"))}

    def send(self, body: str) -> tuple[str, bytes]:
        """Send a helpdesk reply whose subject carries a unique token; return the token and the DATA bytes."""
        token = secrets.token_hex(6)
        raw = (
            f"From: Anna <{SENDER}>\r\n"
            f"To: {BUYER}\r\n"
            f"Subject: Re: your kettle [{token}]\r\n"
            f"Message-ID: <{token}@helpdesk.example>\r\n"
            "In-Reply-To: <q-1@marketplace.amazon.de>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n"
            f"{body}\r\n"
            "Viele Grüße, Anna\r\n"
        ).encode()
        with smtplib.SMTP("127.0.0.1", self.process.port, timeout=60) as client:
            client.sendmail(SENDER, [BUYER], raw)  # raises unless 250
        return token, raw

    def held(self, token: str) -> dict[str, Any]:
        [item] = self.json("quarantine", "list", "--search", token)["items"]
        return dict(item)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    base = tmp_path_factory.mktemp("quarantine-cli")
    data_dir, port = base / "data", free_port()
    process = GatewayProcess(
        "--dev", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--capture-port", str(port),
        log_path=base / "serve.log",
    )  # fmt: skip
    try:
        process.wait_started()
        yield Dev(process, data_dir, port)
    finally:
        process.stop()


LINK = "The manual for your kettle is at https://www.kettle-parts.example/manual.pdf"


def test_quarantined_message_is_listed_with_findings_and_released_byte_for_byte(dev: Dev) -> None:
    token, sent = dev.send(LINK)
    item = dev.held(token)
    assert item["status"] == "held"
    assert item["envelope"]["mail_from"] == SENDER
    assert item["envelope"]["rcpt_tos"] == [BUYER]
    [finding] = [f for f in item["verdict"]["findings"] if f["rule"] == "link.external"]
    assert "https://www.kettle-parts.example/manual.pdf" in finding["evidence"]

    exported = dev.gateway("quarantine", "export", item["id"])
    assert exported.returncode == 0
    assert exported.stdout.endswith(sent)  # what the client sent, under the gateway's Received header

    before = dev.captured()
    released = dev.gateway("quarantine", "release", item["id"], "--reason", "the buyer asked for the manual")
    assert released.returncode == 0, released.stderr.decode()
    assert released.stdout.decode().startswith(f"{item['id']} released to {BUYER}: 250 ")
    [new] = [data for name, data in dev.captured().items() if name not in before]
    assert new == exported.stdout  # byte for byte what was held

    shown = dev.json("quarantine", "show", item["id"])
    assert (shown["status"], shown["status_by"]) == ("released", "alice")
    release = [h for h in shown["history"] if h["action"] == "release"]
    assert [(h["actor"], h["reason"], h["result"]) for h in release] == [
        ("alice", "the buyer asked for the manual", "ok")
    ]


def test_two_operators_releasing_at_once_deliver_it_once(dev: Dev) -> None:
    token, _ = dev.send(LINK)
    qid = dev.held(token)["id"]
    before = dev.captured()
    base = ["quarantine", "release", qid, "--reason", "ok"]
    dev_args = ["--dev", "--data-dir", str(dev.data_dir), "--capture-port", str(dev.capture_port)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", *base, *dev_args, "--user", user],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for user in ("alice", "bob")
    ]
    errors = [r.communicate(timeout=120)[1].decode() for r in racers]
    outcomes = [(r.returncode, err) for r, err in zip(racers, errors, strict=True)]
    assert sorted(code for code, _ in outcomes) == [0, 1]
    [refusal] = [err for code, err in outcomes if code == 1]
    assert qid in refusal
    assert ("already released" in refusal) or ("being released" in refusal)
    assert len([n for n in dev.captured() if n not in before]) == 1


def test_reject_with_notice_sends_it_to_the_original_sender(dev: Dev) -> None:
    token, _ = dev.send(LINK)
    qid = dev.held(token)["id"]
    before = dev.captured()
    result = dev.gateway("quarantine", "reject", qid, "--notify", "--reason", "no links to our shop")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == f"{qid} rejected; notice sent to {SENDER}\n"
    [notice] = [data for name, data in dev.captured().items() if name not in before]
    assert f"X-Gateway-Quarantine-Id: {qid}".encode() in notice
    assert f"To: {SENDER}".encode() in notice
    assert b"no links to our shop" in notice
    captured = [e for e in _log_lines(dev) if "message_captured" in e and f"size={len(notice)}" in e]
    assert captured
    assert f"recipients=['{SENDER}']" in captured[-1]


def _log_lines(dev: Dev) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        lines = dev.process.output().splitlines()
        if any("message_captured" in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_purge_removes_only_what_is_older(dev: Dev) -> None:
    """An old reviewed message goes; today's reviewed one and an old unreviewed one stay."""
    token, _ = dev.send(LINK)
    recent = dev.held(token)["id"]
    assert dev.gateway("quarantine", "delete", recent, "--reason", "test").returncode == 0
    store = open_store(dev_config(dev.data_dir).database_url)
    try:
        long_ago = datetime.now(UTC) - timedelta(days=45)
        old = store.quarantine(decision(decided_at=long_ago), raw_message())
        old_held = store.quarantine(decision(decided_at=long_ago), raw_message())
        store.decide(old, QuarantineStatus.REJECTED, AuditEntry("carol", "reject", old, long_ago, "old"))
    finally:
        store.close()
    purged = dev.json("quarantine", "purge", "--older-than", "30d")
    assert (purged["quarantined"], purged["kept_held"]) == (1, 1)
    remaining = {i["id"] for i in dev.json("quarantine", "list", "--limit", "1000")["items"]}
    assert old not in remaining
    assert {recent, old_held} <= remaining


def test_unknown_id_is_a_clear_error(dev: Dev) -> None:
    for args in (("show", "NO-SUCH-ID"), ("release", "NO-SUCH-ID", "--reason", "x"), ("export", "NO-SUCH-ID")):
        result = dev.gateway("quarantine", *args)
        assert result.returncode == 1
        assert result.stderr.decode() == "gateway: no quarantined message with id 'NO-SUCH-ID'\n"
        assert result.stdout == b""


def test_decision_log_has_every_message(dev: Dev) -> None:
    token, _ = dev.send(LINK)
    [row] = dev.json("decisions", "list", "--search", token)["items"]
    assert (row["action"], row["outcome"], row["account"]) == ("quarantine", "quarantined", "dev")
    stats = dev.json("decisions", "stats", "--since", "1h")
    assert stats["by_action"]["quarantine"] >= 1
    assert stats["by_category"]["link.external"] >= 1


@pytest.mark.postgres
def test_postgresql_store_shared_by_server_and_cli(
    postgres: PostgresSchemas, tmp_path: Path, capture: CaptureHop
) -> None:
    """With store.database_url on PostgreSQL: held by the server, listed and released once by two racing CLIs."""
    if not postgres.available:
        pytest.skip(postgres.reason)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path}"
[server]
listen = "127.0.0.1:0"
hostname = "gw.test"
[[accounts]]
name = "helpdesk"
networks = ["127.0.0.0/8"]
senders = ["@seller.example"]
[upstreams.default]
host = "127.0.0.1"
port = {capture.port}
tls = "none"
[store]
database_url = "{postgres.new_url()}"
""",
        encoding="utf-8",
    )
    process = GatewayProcess("--config", str(config), log_path=tmp_path / "serve.log")
    try:
        process.wait_started()
        server = Dev(process, tmp_path, 0)
        token, sent = server.send(LINK)
    finally:
        process.stop()
    cli = ["--config", str(config)]
    listed = subprocess.run(
        [sys.executable, "-m", "gateway", "quarantine", "list", "--json", "--search", token, *cli],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    [item] = json.loads(listed.stdout)["items"]
    assert item["verdict"]["findings"][0]["rule"] == "link.external"
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "quarantine", "release", item["id"], "--reason", "ok", *cli],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outcomes = [(r.communicate(timeout=120), r.returncode) for r in racers]
    assert sorted(code for _, code in outcomes) == [0, 1], outcomes
    [relayed] = capture.messages
    assert relayed.data.endswith(sent)
    assert (relayed.mail_from, relayed.rcpt_tos) == (SENDER, [BUYER])
