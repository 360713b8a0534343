"""The decision log, dashboard, audit log and policy pages over a real store and the real service."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, time, timedelta
from html import unescape
from pathlib import Path

import pytest
import yaml

from gateway.model import Action, Category
from gateway.store.records import AuditQuery, AuditResult, Role
from tests.storekit import database_url, decision, finding, postgres, raw_message
from tests.webkit import RULE, ConsoleKit, build_console, csrf_of, kit

__all__ = ["database_url", "kit", "postgres"]

LOG_PAGES = ["/decisions", "/dashboard", "/audit", "/policies", "/policies/rules/review.removal"]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def audit(kit: ConsoleKit, action: str) -> list[tuple[str, AuditResult, str]]:
    page = asyncio.run(kit.service.audit_log(AuditQuery(action=action)))
    return [(e.actor, e.result, e.detail) for e in page.items]


def rows(html: str) -> int:
    """How many data rows the page's first list table has."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.count("<tr")


# -- access -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", LOG_PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(kit: ConsoleKit, path: str) -> None:
    """No log page is readable without a session; the sign-in page brings them back."""
    answer = kit.anonymous().get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_a_viewer_reads_every_log_page(kit: ConsoleKit) -> None:
    """The viewer role is enough to read; pages carry the strict CSP."""
    client = kit.client(Role.VIEWER)
    for path in LOG_PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_signed_out_reload_is_refused(kit: ConsoleKit) -> None:
    """A POST without a session does not reach the reload (CSRF refuses it first)."""
    before = kit.holder.current
    answer = kit.anonymous().post("/policies/reload", data={"csrf_token": "guess"})
    assert answer.status_code in (303, 403)
    assert kit.holder.current is before
    assert audit(kit, "policy_reload") == []


# -- decision log -----------------------------------------------------------------------


def fill_decisions(kit: ConsoleKit) -> None:
    at = now()
    incentive = finding(
        "review.incentive", Category.REVIEW_INCENTIVE, Action.REJECT, language="de", evidence="Gutschein"
    )
    link = finding("link.external", Category.LINK_EXTERNAL, Action.QUARANTINE, language=None, evidence="http://x.test")
    decisions = [
        decision(action=Action.PASS, subject="Shipping update", account="acme", decided_at=at, outcome="relayed"),
        decision(subject="Removal request", account="acme", decided_at=at),
        decision(
            action=Action.REJECT,
            findings=(incentive,),
            subject="Gutschein für Bewertung",
            account="globex",
            profile="ebay",
            decided_at=at - timedelta(days=3),
            outcome="rejected",
        ),
        decision(findings=(link,), subject="See our shop", account="globex", decided_at=at, rcpt=("z@example.org",)),
    ]
    for made in decisions:
        kit.store.record_decision(made)


FILTER_CASES = [
    ("", {"Shipping update", "Removal request", "Gutschein für Bewertung", "See our shop"}),
    ("action=reject", {"Gutschein für Bewertung"}),
    ("action=quarantine", {"Removal request", "See our shop"}),
    ("rule=review", {"Removal request", "Gutschein für Bewertung"}),
    ("rule=review.incentive", {"Gutschein für Bewertung"}),
    ("category=link.external", {"See our shop"}),
    ("language=de", {"Gutschein für Bewertung"}),
    ("account=globex", {"Gutschein für Bewertung", "See our shop"}),
    ("profile=ebay", {"Gutschein für Bewertung"}),
    ("q=z%40example.org", {"See our shop"}),
    ("q=shipping", {"Shipping update"}),
    ("action=quarantine&account=globex", {"See our shop"}),
    ("outcome=relayed", {"Shipping update"}),
    ("outcome=rejected", {"Gutschein für Bewertung"}),
]


def test_decision_log_filters(kit: ConsoleKit) -> None:
    """Each filter narrows the log to the matching decisions (rule also matches sub-rules)."""
    fill_decisions(kit)
    client = kit.client(Role.VIEWER)
    subjects = {"Shipping update", "Removal request", "Gutschein für Bewertung", "See our shop"}
    for query, shown in FILTER_CASES:
        html = client.get(f"/decisions?{query}").text
        assert {s for s in subjects if f"<td>{s}</td>" in html} == shown, query
        assert f"of {len(shown)} decision" in html, query


def test_decision_log_date_range_includes_both_days(kit: ConsoleKit) -> None:
    """`since`/`until` are whole UTC days, both included."""
    fill_decisions(kit)
    client = kit.client(Role.VIEWER)
    old = (now() - timedelta(days=3)).date().isoformat()
    html = client.get(f"/decisions?since={old}&until={old}").text
    assert "Gutschein für Bewertung" in html
    assert "Removal request" not in html
    today = now().date().isoformat()
    html = client.get(f"/decisions?since={today}").text
    assert "Gutschein für Bewertung" not in html


def test_decision_rows_show_findings_and_link_to_filters_and_messages(kit: ConsoleKit) -> None:
    """Rule badges filter the log; a quarantined decision links to its message."""
    fill_decisions(kit)
    html = kit.client(Role.VIEWER).get("/decisions?action=reject").text
    assert 'href="/decisions?action=reject&amp;rule=review.incentive"' in html
    assert "Gutschein</q>" in html
    html = kit.client(Role.VIEWER).get("/decisions?q=Removal").text
    found = re.search(r'href="/messages/(Q[0-9A-F]+)"', html)
    assert found is not None


def test_decision_log_pages(kit: ConsoleKit) -> None:
    """55 decisions: 50 on the first page with a link on; 5 on the second, filters kept."""
    at = now()
    for n in range(55):
        kit.store.record_decision(decision(subject=f"Message {n}", decided_at=at - timedelta(minutes=n)))
    client = kit.client(Role.VIEWER)
    first = client.get("/decisions?action=quarantine").text
    assert rows(first) == 50
    assert "Showing 1–50 of 55 decisions" in first
    assert "<td>Message 0</td>" in first  # newest first
    assert 'href="/decisions?action=quarantine&amp;page=2" rel="next"' in first
    second = client.get("/decisions?action=quarantine&page=2").text
    assert rows(second) == 5
    assert "<td>Message 54</td>" in second
    assert 'href="/decisions?action=quarantine" rel="prev"' in second


def test_hostile_decision_data_is_escaped(kit: ConsoleKit) -> None:
    """Subjects, addresses and evidence are text, never markup."""
    evil = "<script>alert(1)</script>"
    kit.store.record_decision(
        decision(
            subject=evil,
            mail_from=f'"{evil}"@x.test',
            findings=(finding(evidence=f"<img src=x onerror=alert(1)>{evil}"),),
        )
    )
    html = kit.client(Role.VIEWER).get("/decisions").text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_decision_filters_answer_400_naming_the_field(kit: ConsoleKit) -> None:
    """A bad filter is a clear message with the form kept, not a traceback."""
    client = kit.client(Role.VIEWER)
    for query, message in [
        ("action=drop", "action: 'drop' is not one of pass, quarantine, reject"),
        ("outcome=lost", "outcome: 'lost' is not one of relayed, quarantined, rejected, failed"),
        ("since=2025-02-30", "since: '2025-02-30' is not a date (YYYY-MM-DD)"),
        ("page=-1", "page: '-1' is not a page number"),
    ]:
        answer = client.get(f"/decisions?{query}")
        assert answer.status_code == 400, query
        assert message in unescape(answer.text)
        assert 'action="/decisions"' in answer.text


# -- dashboard --------------------------------------------------------------------------


TILE = r'<span class="tile-value">(\d+)</span><span class="tile-label">([^<]+)</span>'


def svgs(html: str) -> dict[str, ET.Element]:
    """The page's charts by id, parsed as XML (fails when one is not well-formed)."""
    found = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    charts = [ET.fromstring(svg) for svg in found]
    return {str(chart.get("id")): chart for chart in charts}


def test_dashboard_counts_and_charts(kit: ConsoleKit) -> None:
    """Totals, per-action tiles, the held count and the five accessible charts for the last 7 days."""
    fill_decisions(kit)
    kit.store.quarantine(decision(subject="Held one", decided_at=now()), raw_message())
    html = kit.client(Role.VIEWER).get("/dashboard?period=7").text
    tiles = {label: int(value) for value, label in re.findall(TILE, html)}
    assert tiles == {"decisions": 5, "pass": 1, "quarantine": 3, "reject": 1, "held now, awaiting review": 1}
    charts = svgs(html)
    assert set(charts) == {
        "chart-days",
        "chart-day-categories",
        "chart-categories",
        "chart-rules",
        "chart-languages",
        "chart-accounts",
    }
    for chart in charts.values():
        assert chart.get("role") == "img"
        assert chart.get("aria-labelledby") == f"{chart.get('id')}-title {chart.get('id')}-desc"
    words = {name: {t.text for t in chart.iter("{http://www.w3.org/2000/svg}text")} for name, chart in charts.items()}
    assert {"review.removal", "review.incentive", "link.external"} <= words["chart-rules"]
    assert {"acme", "globex"} <= words["chart-accounts"]
    assert {"en", "de"} <= words["chart-languages"]
    assert {"pass", "quarantine", "reject"} <= words["chart-days"]
    assert {"review.removal", "review.incentive", "link.external"} <= words["chart-day-categories"]
    tips = [t.text or "" for t in charts["chart-day-categories"].iter("{http://www.w3.org/2000/svg}title")]
    today = now().date().isoformat()
    assert f"{today}: 3 decisions (review.removal 2, link.external 1)" in tips


def test_dashboard_days_on_each_backend(tmp_path: Path, database_url: str) -> None:
    """SQLite and PostgreSQL group by the same UTC day: a decision at 23:30 UTC is on its own day's column."""
    built = build_console(tmp_path, database_url)
    try:
        today = now().date()
        late = datetime.combine(today - timedelta(days=2), time(23, 30), tzinfo=UTC)
        early = datetime.combine(today - timedelta(days=1), time(0, 30), tzinfo=UTC)
        built.store.record_decision(decision(action=Action.REJECT, decided_at=late, outcome="rejected"))
        built.store.record_decision(decision(decided_at=early))
        built.store.record_decision(decision(decided_at=early + timedelta(minutes=1)))
        html = built.client(Role.VIEWER).get("/dashboard?period=7").text
        table = dict(re.findall(r'<th scope="row">([\d-]+)</th>((?:<td>\d+</td>)+)', html))
        assert len(table) == 7
        assert table[(today - timedelta(days=2)).isoformat()] == "<td>0</td><td>0</td><td>1</td>"
        assert table[(today - timedelta(days=1)).isoformat()] == "<td>0</td><td>2</td><td>0</td>"
        assert table[today.isoformat()] == "<td>0</td><td>0</td><td>0</td>"
    finally:
        built.close()


def test_dashboard_bars_link_to_the_decision_log_of_the_period(kit: ConsoleKit) -> None:
    """Selecting a bar opens the decisions it counts."""
    fill_decisions(kit)
    client = kit.client(Role.VIEWER)
    html = client.get("/dashboard?period=7").text
    first = (now().date() - timedelta(days=6)).isoformat()
    last = now().date().isoformat()
    target = f"/decisions?since={first}&amp;until={last}&amp;account=globex"
    assert f'href="{target}"' in html
    assert f'href="/decisions?since={first}&amp;until={last}&amp;outcome=relayed"' in html
    listed = client.get(unescape(target)).text
    assert "See our shop" in listed
    assert "Gutschein für Bewertung" in listed
    assert "Shipping update" not in listed


def test_dashboard_custom_period(kit: ConsoleKit) -> None:
    """A custom range counts only its days."""
    fill_decisions(kit)
    day = (now() - timedelta(days=3)).date().isoformat()
    html = kit.client(Role.VIEWER).get(f"/dashboard?period=custom&since={day}&until={day}").text
    assert re.search(r'>1</span><span class="tile-label">decisions<', html)
    assert re.search(r'>1</span><span class="tile-label">reject<', html)
    assert f'<th scope="row">{day}</th><td>0</td><td>0</td><td>1</td>' in html


def test_dashboard_without_decisions_says_so(kit: ConsoleKit) -> None:
    """An empty period draws charts that say there is nothing, not broken axes."""
    html = kit.client(Role.VIEWER).get("/dashboard").text
    assert "No decisions in this period." in html
    assert re.search(r'>0</span><span class="tile-label">decisions<', html)


def test_dashboard_escapes_account_names_in_charts(kit: ConsoleKit) -> None:
    """An account name that looks like markup stays text inside the SVG."""
    kit.store.record_decision(decision(account='<script>alert("x")</script>', decided_at=now()))
    html = kit.client(Role.VIEWER).get("/dashboard").text
    assert "<script>alert" not in html
    words = {t.text for t in svgs(html)["chart-accounts"].iter("{http://www.w3.org/2000/svg}text")}
    assert '<script>alert("x")</script>' in words


def test_bad_dashboard_period_answers_400(kit: ConsoleKit) -> None:
    """A bad period is named; the form stays to correct it."""
    client = kit.client(Role.VIEWER)
    for query, message in [
        ("period=12", "period: '12' is not one of"),
        ("period=custom&since=2020-01-01", "longer than 366 days"),
        ("period=custom&since=2025-05-02&until=2025-05-01", "until: 2025-05-01 is before since"),
    ]:
        answer = client.get(f"/dashboard?{query}")
        assert answer.status_code == 400, query
        assert message in unescape(answer.text)
        assert 'action="/dashboard"' in answer.text


# -- audit log --------------------------------------------------------------------------


def test_audit_log_lists_and_filters_actions(kit: ConsoleKit) -> None:
    """Sign-ins and review actions appear with who, what, why; filters narrow them."""
    qid = kit.store.quarantine(decision(decided_at=now()), raw_message())
    asyncio.run(kit.service.reject(qid, user="carol", reason="asks to remove a review"))
    client = kit.client(Role.VIEWER, name="vera")
    html = client.get("/audit").text
    assert "asks to remove a review" in html
    assert f'href="/messages/{qid}"' in html
    assert ">vera</td>" in html  # her own sign-in
    only = client.get("/audit?actor=carol").text
    assert rows(only) == 1
    assert "asks to remove a review" in only
    logins = client.get("/audit?action=login").text
    assert "asks to remove a review" not in logins
    assert ">login</td>" in logins
    target = client.get(f"/audit?target={qid}").text
    assert rows(target) == 1
    future = (now().date() + timedelta(days=1)).isoformat()
    assert rows(client.get(f"/audit?since={future}").text) == 0


def test_bad_audit_filter_answers_400(kit: ConsoleKit) -> None:
    """A malformed date is named."""
    answer = kit.client(Role.VIEWER).get("/audit?until=tomorrow")
    assert answer.status_code == 400
    assert "until: 'tomorrow' is not a date" in unescape(answer.text)


# -- policies ---------------------------------------------------------------------------


def test_policy_page_lists_loaded_rules(kit: ConsoleKit) -> None:
    """Rule id, category, action, description, languages with examples and counts."""
    html = kit.client(Role.VIEWER).get("/policies").text
    assert 'href="/policies/rules/review.removal"' in html
    assert RULE["description"] in html
    assert "<td>any, de, en</td>" in html
    assert "<td>3 / 1</td>" in html  # hits: any 1 + en 1 + de 1; passes: en 1
    assert kit.holder.current.specs.digest[:12] in html


def test_rule_page_shows_examples_per_language_and_profile_effects(kit: ConsoleKit) -> None:
    """Hit and pass examples per language; each profile's effect; a link to the rule's decisions."""
    html = kit.client(Role.VIEWER).get("/policies/rules/review.removal").text
    assert "Bitte löschen Sie Ihre Bewertung." in html
    assert "Thanks for your review." in html
    assert "attached: photo.png" in html
    assert "Order 302-1234567-1234567" in html
    assert '<td class="mono">amazon</td><td>reject</td>' in html
    assert '<td class="mono">default</td><td>off</td>' in html
    assert 'href="/decisions?rule=review.removal"' in html


def test_unknown_rule_is_404(kit: ConsoleKit) -> None:
    """A rule that is not loaded is a clear 404."""
    answer = kit.client(Role.VIEWER).get("/policies/rules/no.such")
    assert answer.status_code == 404
    assert "No rule &#39;no.such&#39; is loaded." in answer.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
def test_only_admins_see_and_may_use_reload(kit: ConsoleKit, role: Role) -> None:
    """Viewers and reviewers get no button, and a forged POST with their own token is 403."""
    client = kit.client(role)
    page = client.get("/policies").text
    assert 'action="/policies/reload"' not in page
    before = kit.holder.current
    answer = client.post("/policies/reload", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 403
    assert kit.holder.current is before
    assert audit(kit, "policy_reload") == []


def test_reload_without_the_csrf_token_is_refused(kit: ConsoleKit) -> None:
    """An admin's session alone is not enough: the form's token must be there and match."""
    client = kit.client(Role.ADMIN)
    before = kit.holder.current
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "not-the-token"}):
        answer = client.post("/policies/reload", data=data)
        assert answer.status_code == 403, data
    assert kit.holder.current is before
    assert audit(kit, "policy_reload") == []


def reload(kit: ConsoleKit, client: object, reason: str = "") -> tuple[int, str]:
    from starlette.testclient import TestClient

    assert isinstance(client, TestClient)
    page = client.get("/policies").text
    assert 'action="/policies/reload"' in page
    answer = client.post("/policies/reload", data={"csrf_token": csrf_of(page), "reason": reason})
    return answer.status_code, unescape(answer.text)


def test_admin_reloads_an_edited_policy(kit: ConsoleKit) -> None:
    """Unchanged files reload as unchanged; an edit is swapped in, shown and audited with the note."""
    client = kit.client(Role.ADMIN, name="ada")
    status, html = reload(kit, client)
    assert status == 200
    assert "the files are unchanged (1 rules" in html
    first = kit.holder.current.specs.digest
    rules_file = kit.policy_root / "rules" / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"rules": [{**RULE, "action": "quarantine"}]}), encoding="utf-8")
    status, html = reload(kit, client, reason="soften removal")
    assert status == 200
    assert kit.holder.current.specs.digest != first
    assert f"1 rules now in force (version {kit.holder.current.specs.digest[:12]}, was {first[:12]})" in html
    assert '<a class="rule action-quarantine" href="/policies/rules/review.removal">' in html
    entries = asyncio.run(kit.service.audit_log(AuditQuery(action="policy_reload"))).items
    assert [(e.actor, e.result, e.reason) for e in entries] == [
        ("ada", AuditResult.OK, "soften removal"),
        ("ada", AuditResult.OK, ""),
    ]
    assert entries[0].detail == f"{first[:12]} -> {kit.holder.current.specs.digest[:12]}, 1 rules"


def test_a_broken_policy_is_refused_with_its_problems_and_the_running_one_kept(kit: ConsoleKit) -> None:
    """Invalid files: 422, the problem names file and key, nothing changes, the refusal is audited."""
    client = kit.client(Role.ADMIN, name="ada")
    running = kit.holder.current
    rules_file = kit.policy_root / "rules" / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"rules": [{**RULE, "action": "explode"}]}), encoding="utf-8")
    status, html = reload(kit, client)
    assert status == 422
    assert "The policy files were refused" in html
    assert "rules.yaml: rules.0: action" in html
    assert kit.holder.current is running
    [(actor, result, detail)] = audit(kit, "policy_reload")
    assert (actor, result) == ("ada", AuditResult.FAILED)
    assert detail.startswith(f"refused, kept {running.specs.digest[:12]}: ")


def test_reload_hooks_run_only_after_a_successful_reload(kit: ConsoleKit) -> None:
    """`gateway serve` passes the reload on to its workers; a failing hand-over is shown and audited."""
    calls: list[str] = []
    console_state = kit.app.state.console
    console_state.after_reload.append(lambda: calls.append("workers"))
    client = kit.client(Role.ADMIN, name="ada")
    assert reload(kit, client)[0] == 200
    assert calls == ["workers"]
    (kit.policy_root / "rules" / "rules.yaml").write_text("rules: [ {id: broken", encoding="utf-8")
    assert reload(kit, client)[0] == 422
    assert calls == ["workers"]

    def broken() -> None:
        raise OSError("no such process")

    (kit.policy_root / "rules" / "rules.yaml").write_text(yaml.safe_dump({"rules": [RULE]}), encoding="utf-8")
    console_state.after_reload[:] = [broken]
    status, html = reload(kit, client)
    assert status == 200
    assert "the SMTP workers were not told to reload: OSError: no such process" in html
    result, detail = audit(kit, "policy_reload")[0][1:]
    assert result is AuditResult.FAILED
    assert detail.endswith("not passed on to the SMTP workers: OSError: no such process")
