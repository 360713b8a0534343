"""Output of the admin commands: the --json shapes scripts rely on, and the human tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gateway.admin import render_json, render_text
from gateway.admin.results import MessageView
from gateway.model import Action
from gateway.store.records import (
    AuditEntry,
    Count,
    DecisionRecord,
    DecisionStats,
    Page,
    QuarantineRecord,
    QuarantineStatus,
)
from tests.storekit import NOW, decision

#: The documented keys of a quarantine item (docs/quarantine.md); removing or renaming one breaks scripts.
RECORD_KEYS = {
    "id", "status", "created_at", "subject", "size", "profile", "action", "rules", "envelope", "verdict",
    "status_at", "status_by", "status_reason", "claimed_until", "last_error", "last_error_at",
    "upstream_reply", "refused", "notice", "rescan", "has_raw",
}  # fmt: skip
SHOW_KEYS = RECORD_KEYS | {"raw_size", "parse_error", "headers", "attachments", "unscannable", "history"}


def held(
    qid: str = "Q1",
    subject: str = "Your order 302-1234567-1234567",
    status: QuarantineStatus = QuarantineStatus.HELD,
    *,
    has_raw: bool = True,
) -> QuarantineRecord:
    made = decision(qid, subject=subject)
    return QuarantineRecord(
        id=qid,
        decision_id=1,
        created_at=NOW,
        status=status,
        envelope=made.envelope,
        verdict=made.verdict,
        subject=subject,
        size=321,
        has_raw=has_raw,
    )


def test_record_json_keys_are_the_documented_ones() -> None:
    data = render_json.record(held())
    assert set(data) == RECORD_KEYS
    assert data["created_at"] == "2025-05-20T12:00:00Z"
    assert data["status_at"] is None
    assert data["notice"] is None
    assert data["rules"] == ["review.removal"]
    assert set(data["envelope"]) == {
        "mail_from", "rcpt_tos", "account", "authenticated", "peer", "helo", "tls", "received_at",
    }  # fmt: skip
    assert data["verdict"]["findings"][0]["evidence"] == "please remove your review"


def test_show_json_of_a_deleted_message() -> None:
    record = held(status=QuarantineStatus.DELETED, has_raw=False)
    entry = AuditEntry("alice", "delete", "Q1", NOW + timedelta(minutes=1), "spam", id=7)
    data = render_json.show(MessageView(record, None, 0), [entry])
    assert set(data) == SHOW_KEYS
    assert (data["headers"], data["attachments"], data["raw_size"]) == (None, [], 0)
    assert data["history"] == [
        {
            "id": 7,
            "at": "2025-05-20T12:01:00Z",
            "actor": "alice",
            "action": "delete",
            "target": "Q1",
            "reason": "spam",
            "result": "ok",
            "detail": "",
        }
    ]


def test_times_are_utc_with_z() -> None:
    plus_two = datetime(2025, 5, 20, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert render_json.iso(plus_two) == "2025-05-20T12:00:00.000005Z"
    assert render_text.when(plus_two) == "2025-05-20 12:00:00"
    assert render_json.iso(None) is None
    assert render_text.when(None) == "-"


def test_control_characters_in_message_data_cannot_drive_the_terminal() -> None:
    assert render_text.clean("Re: \x1b[2Jsale\r\nnow") == "Re: \\x1b[2Jsale\\r\\nnow"
    assert render_text.clean("Grüße 😀") == "Grüße 😀"
    text = render_text.quarantine_list(Page((held(subject="\x1b]0;pwned\x07"),), 1, 50, 0))
    assert "\x1b" not in text
    assert "\x07" not in text


def test_table_aligns_and_cuts_long_cells() -> None:
    text = render_text.table(["A", "BB", "C"], [["1", "x" * 30, "last column " * 5], ["22", "y", "z"]], max_cell=10)
    lines = text.splitlines()
    assert lines[0] == "A   BB          C"
    assert lines[1] == "1   xxxxxxxxx…  last colu…"
    assert lines[2] == "22  y           z"


def test_list_footer_says_when_more_match() -> None:
    page = Page((held("Q1"), held("Q2")), total=7, limit=2, offset=2)
    assert render_text.quarantine_list(page).splitlines()[-1] == "3-4 of 7 messages (use --limit/--offset for more)"
    assert render_text.quarantine_list(Page((), 0, 50, 0)) == "no quarantined messages match\n0 messages"


def test_decisions_and_stats() -> None:
    row = DecisionRecord(5, decision("Q9", action=Action.REJECT, outcome="rejected"))
    data = render_json.decision(row)
    assert (data["id"], data["queue_id"], data["action"], data["outcome"]) == (5, "Q9", "reject", "rejected")
    assert data["error"] is None
    stats = DecisionStats(
        total=4,
        since=NOW,
        until=None,
        by_action=(Count("pass", 3), Count("reject", 1)),
        by_category=(Count("review.removal", 1),),
        by_day=(Count("2025-05-20", 4),),
    )
    as_json = render_json.stats(stats)
    assert as_json["by_action"] == {"pass": 3, "reject": 1}
    assert as_json["by_language"] == {}
    assert as_json["since"] == "2025-05-20T12:00:00Z"
    text = render_text.stats(stats)
    assert text.startswith("4 decisions, since 2025-05-20 12:00:00 UTC")
    assert "  pass    3      75.0%" in text
    assert "By language: none" in text
