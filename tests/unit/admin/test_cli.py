"""The admin commands in-process (click's runner) over a real store on SQLite and PostgreSQL.

The next hop is a real aiosmtpd capture server on loopback; the policy for
release and rescan is the shipped one. The end-to-end path through a running
``gateway serve`` is in tests/integration/test_quarantine_cli.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from gateway.admin import runtime
from gateway.admin.users import UserManager
from gateway.cli import main
from gateway.config import parse_config
from gateway.model import Action, Category
from gateway.policy.holder import PolicyHolder
from gateway.store import SqlStore
from gateway.store.records import AuditEntry, AuditQuery, QuarantineStatus
from tests.storekit import decision, finding
from tests.support.servers import CaptureHop, LoopThread, free_port

RCPT = "a1b2c3@marketplace.amazon.de"
SENDER = "support@seller.example"
PASSWORD = "correct horse battery staple"


def message(body: str, *, subject: str = "Re: your kettle", attachment: bytes | None = None) -> bytes:
    """A helpdesk reply as SMTP carries it (CRLF), optionally with a PDF attached."""
    msg = EmailMessage()
    msg["From"] = f"Anna <{SENDER}>"
    msg["To"] = RCPT
    msg["Subject"] = subject
    msg["Message-ID"] = "<r1@helpdesk.example>"
    msg["In-Reply-To"] = "<q1@marketplace.amazon.de>"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="manual.pdf")
    return msg.as_bytes(policy=SMTP)


@dataclass
class Cli:
    """Runs ``gateway ...`` with the test's configuration as user alice."""

    config: Path
    store: SqlStore
    hop: CaptureHop

    def __call__(self, *args: str, stdin: str | None = None, user: str = "alice") -> Result:
        return CliRunner().invoke(main, [*args, "--config", str(self.config), "--user", user], input=stdin)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def hold(self, raw: bytes, *, age: timedelta = timedelta(minutes=5), **kw: Any) -> str:
        """Quarantine ``raw`` as the pipeline would, ``age`` ago."""
        made = decision(decided_at=datetime.now(UTC) - age, size=len(raw), **kw)
        return self.store.quarantine(made, raw)


def write_config(path: Path, database_url: str, upstream_port: int) -> Path:
    path.write_text(
        f"""
data_dir = "{path.parent}"
[server]
hostname = "gw.test"
[store]
database_url = "{database_url}"
[upstreams.default]
host = "127.0.0.1"
port = {upstream_port}
tls = "none"
timeout = 5.0
[notices]
from_address = "postmaster@gw.test"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure logging for their process; give the next test the defaults back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def shipped_policy() -> PolicyHolder:
    """The shipped policy, compiled once for the whole run (it takes seconds)."""
    return PolicyHolder.load(parse_config({"upstreams": {"default": {"host": "127.0.0.1"}}}, "test", environ={}))


@pytest.fixture(autouse=True)
def _compile_policy_once(shipped_policy: PolicyHolder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command would compile the same shipped policy again; hand it the one compiled already."""
    monkeypatch.setattr(runtime.PolicyHolder, "load", lambda config: shipped_policy)


@pytest.fixture
def cli(store: SqlStore, database_url: str, tmp_path: Path) -> Iterator[Cli]:
    loop = LoopThread()
    hop = CaptureHop(loop).start()
    yield Cli(write_config(tmp_path / "gateway.toml", database_url, hop.port), store, hop)
    hop.stop()
    loop.close()


def test_list_json_has_findings_and_filters_narrow(cli: Cli) -> None:
    link = finding("link.external", Category.LINK_EXTERNAL, evidence="https://kettle.example/manual.pdf")
    first = cli.hold(message("Manual: https://kettle.example/manual.pdf"), findings=(link,), age=timedelta(days=3))
    second = cli.hold(message("Please remove your review."), account="other")
    listed = cli.json("quarantine", "list")
    assert listed["total"] == 2
    assert [m["id"] for m in listed["items"]] == [second, first]  # newest first
    item = listed["items"][1]
    assert item["status"] == "held"
    assert item["rules"] == ["link.external"]
    assert item["envelope"]["mail_from"] == SENDER
    assert item["envelope"]["rcpt_tos"] == [RCPT]
    [found] = item["verdict"]["findings"]
    assert (found["rule"], found["evidence"]) == ("link.external", "https://kettle.example/manual.pdf")
    assert item["created_at"].endswith("Z")
    assert [m["id"] for m in cli.json("quarantine", "list", "--rule", "link")["items"]] == [first]  # and sub-rules
    assert [m["id"] for m in cli.json("quarantine", "list", "--rule", "lin")["items"]] == []
    assert [m["id"] for m in cli.json("quarantine", "list", "--rule", "link.external")["items"]] == [first]
    assert [m["id"] for m in cli.json("quarantine", "list", "--since", "1d")["items"]] == [second]
    assert [m["id"] for m in cli.json("quarantine", "list", "--account", "other")["items"]] == [second]
    assert cli.json("quarantine", "list", "--status", "released")["total"] == 0
    paged = cli.json("quarantine", "list", "--limit", "1", "--offset", "1")
    assert (paged["total"], [m["id"] for m in paged["items"]]) == (2, [first])

    table = cli("quarantine", "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "RECEIVED", "(UTC)"]
    assert lines[1].startswith(second)
    assert "review.removal" in lines[1]
    assert lines[-1] == "2 messages"


def test_show_gives_envelope_verdict_attachments_and_history(cli: Cli) -> None:
    qid = cli.hold(message("Manual attached.", attachment=b"%PDF-1.4\n%%EOF\n"))
    assert cli("quarantine", "reject", qid, "--reason", "not for the buyer").exit_code == 0
    shown = cli.json("quarantine", "show", qid)
    assert shown["id"] == qid
    assert shown["status"] == "rejected"
    assert (shown["status_by"], shown["status_reason"]) == ("alice", "not for the buyer")
    assert shown["headers"]["message_id"] == "<r1@helpdesk.example>"
    [attachment] = shown["attachments"]
    assert (attachment["filename"], attachment["declared_type"]) == ("manual.pdf", "application/pdf")
    assert shown["verdict"]["findings"][0]["evidence"] == "please remove your review"
    assert [(h["actor"], h["action"], h["reason"], h["result"]) for h in shown["history"]] == [
        ("alice", "reject", "not for the buyer", "ok")
    ]
    text = cli("quarantine", "show", qid).stdout
    assert f"Message {qid}  [rejected]" in text
    assert "evidence: “please remove your review”" in text
    assert "manual.pdf  declared application/pdf" in text
    assert "alice  reject  ok  reason: “not for the buyer”" in text


@pytest.mark.parametrize(
    "args",
    [
        ("quarantine", "show", "NOPE42"),
        ("quarantine", "export", "NOPE42"),
        ("quarantine", "reject", "NOPE42", "--reason", "x"),
        ("quarantine", "delete", "NOPE42"),
        ("quarantine", "rescan", "NOPE42"),
        ("quarantine", "release", "NOPE42", "--reason", "x"),
    ],
    ids=lambda a: a[1],
)
def test_unknown_id_is_one_clear_line_and_exit_1(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr == "gateway: no quarantined message with id 'NOPE42'\n"
    assert result.stdout == ""


def test_export_writes_the_exact_bytes(cli: Cli, tmp_path: Path) -> None:
    """Binary-safe: 8-bit bytes that are not UTF-8, a bare CR, NUL and CRLF come out unchanged."""
    raw = message("x") + b"Gr\xfc\xdfe \x00 half\rline\r\n\xff\xfe\r\n"
    qid = cli.hold(raw)
    result = cli("quarantine", "export", qid)
    assert result.exit_code == 0
    assert result.stdout_bytes == raw
    out = tmp_path / "m.eml"
    assert cli("quarantine", "export", qid, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == raw
    history = cli.json("quarantine", "show", qid)["history"]
    assert [(h["action"], h["detail"]) for h in history] == [("export", f"{len(raw)} bytes")] * 2


def test_release_relays_the_bytes_once_and_records_who_and_why(cli: Cli) -> None:
    raw = message("Manual: https://kettle.example/manual.pdf")
    qid = cli.hold(raw)
    result = cli("quarantine", "release", qid, "--reason", "the manual link is needed", "--json")
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.stdout)
    assert (outcome["ok"], outcome["status"]) == (True, "released")
    assert outcome["upstream_reply"].startswith("250")
    [relayed] = cli.hop.messages
    assert relayed.data == raw
    assert (relayed.mail_from, relayed.rcpt_tos) == (SENDER, [RCPT])
    shown = cli.json("quarantine", "show", qid)
    assert (shown["status"], shown["status_by"], shown["status_reason"]) == (
        "released",
        "alice",
        "the manual link is needed",
    )
    again = cli("quarantine", "release", qid, "--reason", "twice", user="bob")
    assert again.exit_code == 1
    assert "was already released by alice" in again.stderr
    assert len(cli.hop.messages) == 1
    history = [(h["actor"], h["action"], h["result"]) for h in cli.json("quarantine", "show", qid)["history"]]
    assert history == [("alice", "release", "ok"), ("bob", "release", "refused")]


def test_release_the_next_hop_refuses_stays_held_with_exit_1(cli: Cli, database_url: str, tmp_path: Path) -> None:
    qid = cli.hold(message("Manual: https://kettle.example/manual.pdf"))
    dead = Cli(write_config(tmp_path / "dead.toml", database_url, free_port()), cli.store, cli.hop)
    result = dead("quarantine", "release", qid, "--reason", "needed")
    assert result.exit_code == 1
    assert f"gateway: {qid} was NOT released: 451" in result.stderr
    assert "It stays held" in result.stderr
    shown = cli.json("quarantine", "show", qid)
    assert shown["status"] == "held"
    assert shown["last_error"].startswith("451")


def test_reject_with_notice_tells_the_sender(cli: Cli) -> None:
    qid = cli.hold(message("Please remove your review."))
    result = cli("quarantine", "reject", qid, "--notify", "--reason", "asks to remove a review")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{qid} rejected; notice sent to {SENDER}\n"
    [notice] = cli.hop.messages
    assert notice.rcpt_tos == [SENDER]
    assert notice.mail_from == "postmaster@gw.test"
    assert f"X-Gateway-Quarantine-Id: {qid}".encode() in notice.data
    assert b"asks to remove a review" in notice.data
    assert cli.json("quarantine", "show", qid)["notice"]["status"] == "sent"


def test_delete_keeps_the_record_and_refuses_export(cli: Cli) -> None:
    qid = cli.hold(message("Please remove your review."))
    assert cli("quarantine", "delete", qid, "--reason", "spam").stdout == f"{qid} deleted\n"
    shown = cli.json("quarantine", "show", qid)
    assert (shown["status"], shown["has_raw"], shown["raw_size"]) == ("deleted", False, 0)
    result = cli("quarantine", "export", qid)
    assert result.exit_code == 1
    assert result.stderr == f"gateway: {qid}: message {qid} was deleted; its content is no longer stored\n"


def test_several_ids_report_each_and_exit_1_if_one_failed(cli: Cli) -> None:
    first, second = cli.hold(message("a")), cli.hold(message("b"))
    result = cli("quarantine", "reject", first, "MISSING1", second, "--reason", "bulk")
    assert result.exit_code == 1
    assert result.stdout == f"{first} rejected\n{second} rejected\n"
    assert result.stderr == "gateway: no quarantined message with id 'MISSING1'\n"


def test_purge_removes_only_what_is_older(cli: Cli) -> None:
    old_reviewed = cli.hold(message("old"), age=timedelta(days=40))
    old_held = cli.hold(message("old, never reviewed"), age=timedelta(days=40))
    new_reviewed = cli.hold(message("new"), age=timedelta(days=2))
    for qid in (old_reviewed, new_reviewed):
        entry = AuditEntry("alice", "reject", qid, datetime.now(UTC), "test")
        cli.store.decide(qid, QuarantineStatus.REJECTED, entry)
    cli.store.record_decision(
        decision(action=Action.PASS, outcome="relayed", decided_at=datetime.now(UTC) - timedelta(days=41))
    )
    purged = cli.json("quarantine", "purge", "--older-than", "30d", "--reason", "retention")
    assert (purged["quarantined"], purged["decisions"], purged["kept_held"]) == (1, 2, 1)
    left = {m["id"] for m in cli.json("quarantine", "list")["items"]}
    assert left == {old_held, new_reviewed}
    text = cli("quarantine", "purge").stdout  # default: store.retention_days (30)
    assert text.startswith("purged 0 quarantined messages and 0 decisions from before ")
    assert "kept 1 held messages nobody has reviewed" in text


def test_rescan_evaluates_with_the_shipped_policy(cli: Cli) -> None:
    """A message that the shipped policy lets through now is reported as such and stays held."""
    qid = cli.hold(message("Your replacement part ships tomorrow.\n\nKind regards, Anna"))
    result = cli("quarantine", "rescan", qid, "--reason", "policy updated", "--json")
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.stdout)
    assert (outcome["previous_action"], outcome["action"], outcome["now_passes"]) == ("quarantine", "pass", True)
    shown = cli.json("quarantine", "show", qid)
    assert shown["status"] == "held"
    assert shown["rescan"]["by"] == "alice"
    assert cli("quarantine", "rescan", "--all", qid).exit_code == 2  # ids or --all


def test_decisions_list_and_stats(cli: Cli) -> None:
    now = datetime.now(UTC)
    cli.store.record_decision(decision(action=Action.PASS, outcome="relayed", decided_at=now, account="acme"))
    cli.store.record_decision(decision(action=Action.REJECT, outcome="rejected", decided_at=now, account="acme"))
    cli.store.record_decision(
        decision(action=Action.REJECT, outcome="rejected", decided_at=now - timedelta(days=9), account="zeta")
    )
    listed = cli.json("decisions", "list", "--action", "reject")
    assert listed["total"] == 2
    assert {d["account"] for d in listed["items"]} == {"acme", "zeta"}
    assert listed["items"][0]["findings"][0]["rule"] == "review.removal"
    stats = cli.json("decisions", "stats", "--since", "7d")
    assert stats["total"] == 2
    assert stats["by_action"] == {"pass": 1, "reject": 1}
    assert stats["by_account"] == {"acme": 2}
    assert stats["by_day"] == {now.strftime("%Y-%m-%d"): 2}
    text = cli("decisions", "stats").stdout
    assert text.startswith("3 decisions, all time")
    assert "By account:" in text
    assert "zeta" in text


def test_users_are_managed_and_audited(cli: Cli) -> None:
    added = cli("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert added.stdout == "added root: admin, enabled\n"
    prompt = cli("users", "add", "rita", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompt.exit_code == 0, prompt.output
    assert PASSWORD not in prompt.output
    short = cli("users", "add", "sam", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert (short.exit_code, short.stderr) == (1, "gateway: the password must have at least 15 characters\n")
    assert cli("users", "add", "rita", "--role", "viewer", "--password-stdin", stdin=PASSWORD).exit_code == 1
    assert cli("users", "set-role", "rita", "reviewer").stdout == "changed rita: reviewer, enabled\n"
    last = cli("users", "disable", "root")
    assert (last.exit_code, last.stderr) == (
        1,
        "gateway: root: root is the last enabled admin; make another admin first\n",
    )
    assert cli("users", "disable", "rita").exit_code == 0
    assert cli("users", "passwd", "ghost", "--password-stdin", stdin=PASSWORD).stderr == (
        "gateway: no user with id 'ghost'\n"
    )
    new_password = "a different long passphrase"
    assert cli("users", "passwd", "root", "--password-stdin", stdin=new_password + "\n").exit_code == 0
    users = {u["name"]: u for u in cli.json("users", "list")}
    assert {n: (u["role"], u["disabled"]) for n, u in users.items()} == {
        "rita": ("reviewer", True),
        "root": ("admin", False),
    }
    manager = UserManager(cli.store, lambda: datetime.now(UTC))
    assert asyncio.run(manager.authenticate("root", PASSWORD)) is None
    assert asyncio.run(manager.authenticate("root", new_password)) is not None
    audited = cli.store.list_audit(AuditQuery(actor="alice")).items
    assert [(e.action, e.target) for e in reversed(audited)] == [
        ("user_add", "root"),
        ("user_add", "rita"),
        ("user_role", "rita"),
        ("user_disable", "rita"),
        ("user_password", "root"),
    ]
