"""The human output of the admin commands: aligned tables and a readable message view.

Times are UTC, to the second, without the ``T`` (the column says UTC). Long
cells are cut with an ellipsis so a row stays one line; ``--json`` has the
full values. Control characters from message data (a subject can hold
anything) are shown escaped so they cannot move the terminal's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.admin.results import MessageView
from gateway.model import Finding
from gateway.store.records import (
    AuditEntry,
    Count,
    DecisionRecord,
    DecisionStats,
    Page,
    QuarantineRecord,
    User,
)

#: Widest a table cell may be before it is cut (the last column is never padded).
MAX_CELL = 48


def clean(text: str) -> str:
    """``text`` on one line with control characters shown as Python escapes (newline as backslash-n)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def when(moment: datetime | None) -> str:
    """``2025-05-20 12:00:00`` in UTC, or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int) -> str:
    """Bytes as ``812 B``, ``12.4 kB``, ``3.1 MB``."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _cut(text: str, width: int) -> str:
    text = clean(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, max_cell: int = MAX_CELL) -> str:
    """Left-aligned columns separated by two spaces; every cell cut to ``max_cell``."""
    cells = [[_cut(c, max_cell) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _footer(result: Page[object] | Page[QuarantineRecord] | Page[DecisionRecord], noun: str) -> str:
    shown = len(result.items)
    if shown == result.total:
        return f"{result.total} {noun}{'' if result.total == 1 else 's'}"
    first = result.offset + 1 if shown else result.offset
    return f"{first}-{result.offset + shown} of {result.total} {noun}s (use --limit/--offset for more)"


def quarantine_list(result: Page[QuarantineRecord]) -> str:
    """``quarantine list``: one line per message, newest first, then how many match."""
    rows = [
        [
            r.id,
            when(r.created_at),
            r.status.value,
            r.verdict.action.value,
            r.envelope.account or "-",
            r.envelope.mail_from or "<>",
            ", ".join(r.envelope.rcpt_tos),
            ", ".join(dict.fromkeys(f.rule for f in r.verdict.acting_findings)) or "-",
            r.subject,
        ]
        for r in result.items
    ]
    headers = ["ID", "RECEIVED (UTC)", "STATUS", "ACTION", "ACCOUNT", "FROM", "TO", "RULES", "SUBJECT"]
    body = table(headers, rows, max_cell=40) if rows else "no quarantined messages match"
    return f"{body}\n{_footer(result, 'message')}"


def _finding(index: int, f: Finding) -> list[str]:
    tags = [f.action.value] + (["monitor"] if f.monitor else [])
    where = " ".join(x for x in (f.language or "", f.location) if x)
    lines = [f"  {index}. {f.rule} [{', '.join(tags)}]" + (f" {clean(where)}" if where else "")]
    if f.description:
        lines.append(f"     {clean(f.description)}")
    if f.evidence:
        lines.append(f"     evidence: “{clean(f.evidence)}”")
    return lines


def _audit_line(e: AuditEntry) -> str:
    line = f"  {when(e.at)}  {clean(e.actor)}  {e.action}  {e.result.value}"
    if e.reason:
        line += f"  reason: “{clean(e.reason)}”"
    if e.detail:
        line += f"  ({clean(e.detail)})"
    return line


def show(view: MessageView, history: Sequence[AuditEntry]) -> str:
    """``quarantine show``: envelope, verdict with evidence, attachments, status and its history."""
    r, env, parsed = view.record, view.record.envelope, view.parsed
    via = ", ".join(
        x for x in (f"account {env.account}" if env.account else "", f"peer {env.peer}" if env.peer else "") if x
    )
    out = [
        f"Message {r.id}  [{r.status.value}]",
        f"  Received   {when(r.created_at)} UTC, {size(r.size)}",
        f"  From       {clean(env.mail_from) or '<>'}" + (f" ({via}{', TLS' if env.tls else ''})" if via else ""),
        f"  To         {clean(', '.join(env.rcpt_tos))}",
        f"  Subject    {clean(r.subject)}",
    ]
    if parsed is not None:
        out += [f"  Header From {clean(parsed.from_addr)}"] if parsed.from_addr != env.mail_from else []
        out += [f"  Message-ID {clean(parsed.message_id)}"] if parsed.message_id else []
        out += [f"  Date       {clean(parsed.date)}"] if parsed.date else []
    out += [f"  Profile    {r.profile}", "", f"Verdict: {r.verdict.action.value}"]
    for i, f in enumerate(r.verdict.findings, 1):
        out += _finding(i, f)
    if r.rescan is not None:
        v = r.rescan.verdict
        rules = ", ".join(f.rule for f in v.acting_findings) or "no rule"
        out += ["", f"Rescanned {when(r.rescan.at)} by {clean(r.rescan.by)}: {v.action.value} ({rules})"]
    out += ["", "Attachments:"]
    if parsed is None:
        out.append(f"  (not parsed: {view.parse_error or 'the message bytes were deleted'})")
    elif not parsed.attachments:
        out.append("  none")
    for a in parsed.attachments if parsed else ():
        detected = a.detected_type or "unknown"
        line = f"  {clean(a.filename) or '(no name)'}  declared {a.declared_type}, detected {detected}, {size(a.size)}"
        flags = sorted(f.value for f in a.flags)
        line += f"  [{', '.join(flags)}]" if flags else ""
        line += f"  unscannable: {a.unscannable}" if a.unscannable else ""
        out.append(line)
    out += ["", f"Status: {r.status.value}" + (f" since {when(r.status_at)} UTC" if r.status_at else "")]
    if r.status_by:
        out.append(f"  by {clean(r.status_by)}" + (f": “{clean(r.status_reason)}”" if r.status_reason else ""))
    if r.upstream_reply:
        out.append(f"  next hop replied: {clean(r.upstream_reply)}")
    for rcpt, reply in r.refused.items():
        out.append(f"  refused {clean(rcpt)}: {clean(reply)}")
    if r.notice_status:
        out.append(f"  notice to sender: {r.notice_status} ({clean(r.notice_detail)})")
    if r.last_error:
        out.append(f"  last release error ({when(r.last_error_at)} UTC): {clean(r.last_error)}")
    out += ["", "History:"]
    ordered = sorted(history, key=lambda e: (e.at, e.id or 0))
    out += [_audit_line(e) for e in ordered] or ["  no review actions yet"]
    return "\n".join(out)


def decisions_list(result: Page[DecisionRecord]) -> str:
    """``decisions list``: one line per decision, newest first."""
    rows = []
    for row in result.items:
        d = row.decision
        rules = ", ".join(dict.fromkeys(f.rule for f in d.verdict.findings)) or "-"
        rcpts = ", ".join(d.envelope.rcpt_tos)
        account = d.envelope.account or "-"
        rows.append(
            [when(d.decided_at), d.queue_id, d.verdict.action.value, d.outcome, account, rcpts, rules, d.subject]
        )
    headers = ["DECIDED (UTC)", "QUEUE ID", "ACTION", "OUTCOME", "ACCOUNT", "TO", "RULES", "SUBJECT"]
    body = table(headers, rows, max_cell=40) if rows else "no decisions match"
    return f"{body}\n{_footer(result, 'decision')}"


def _breakdown(title: str, counts: tuple[Count, ...], total: int) -> list[str]:
    if not counts:
        return [f"{title}: none"]
    rows = [[c.key or "(none)", str(c.count), f"{100 * c.count / total:.1f}%" if total else "-"] for c in counts]
    return [f"{title}:", *("  " + line for line in table(["", "COUNT", "SHARE"], rows).splitlines()[1:])]


def stats(s: DecisionStats) -> str:
    """``decisions stats``: the total and each breakdown as a small table."""
    period = f"since {when(s.since)} UTC" if s.since else "all time"
    out = [f"{s.total} decisions, {period}", ""]
    for title, counts in (
        ("By action", s.by_action),
        ("By outcome", s.by_outcome),
        ("By category", s.by_category),
        ("By language", s.by_language),
        ("By account", s.by_account),
        ("By rule", s.by_rule),
        ("By day", s.by_day),
    ):
        out += [*_breakdown(title, counts, s.total), ""]
    out.append("(categories, languages and rules count a decision once for each it has a finding in)")
    return "\n".join(out)


def users_list(users: Sequence[User]) -> str:
    """``users list``: name, role, state and the last sign-in."""
    if not users:
        return "no console users yet: add one with `gateway users add NAME --role admin`"
    rows = [
        [u.name, u.role.value, "disabled" if u.disabled else "enabled", when(u.created_at), when(u.last_login_at)]
        for u in users
    ]
    return table(["NAME", "ROLE", "STATE", "CREATED (UTC)", "LAST SIGN-IN (UTC)"], rows)
