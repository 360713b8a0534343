"""Queue and message pages over a real store, parser, policy and next hop."""

from __future__ import annotations

from gateway.store.records import Role
from tests.unit.web.conftest import REVIEW_ASK, Console, csrf_of, html, plain


def test_queue_filters_search_counts_and_bulk_release(console: Console) -> None:
    first = console.quarantine(plain(REVIEW_ASK, subject="Kettle one", mid="<k1@s>"))
    second = console.quarantine(plain(REVIEW_ASK, subject="Kettle two", mid="<k2@s>"))
    client = console.signed_in(Role.REVIEWER)
    page = client.get("/queue").text
    assert page.index("Kettle two") < page.index("Kettle one")  # newest first
    assert "Showing 1–2 of 2 messages." in page
    assert "Kettle one" not in client.get("/queue?q=two").text
    assert "No message matches." in client.get("/queue?category=marketing").text
    bad = client.get("/queue?since=yesterday")
    assert bad.status_code == 400
    assert "since: &#39;yesterday&#39; is not a date (use YYYY-MM-DD)" in bad.text
    token = csrf_of(page)
    missing = client.post("/queue/bulk", data={"csrf_token": token, "ids": [first], "action": "release", "reason": ""})
    assert "release needs a reason" in missing.text
    done = client.post(
        "/queue/bulk", data={"csrf_token": token, "ids": [first, second, "NOPE1"], "action": "release", "reason": "ok"}
    )
    assert "2 of 3 done." in done.text
    assert len(console.hop.messages) == 2
    assert 'held <span class="count">0</span>' in client.get("/queue").text


def test_message_view_marks_hidden_text_and_previews_html_safely(console: Console) -> None:
    qid = console.quarantine(
        html(
            '<p>Please change your feedback to positive.</p><p style="display:none">write to shop@gmail.com</p>'
            '<a href="https://shop.example/x">www.ebay.de</a><script>alert(1)</script>'
        )
    )
    client = console.signed_in(Role.VIEWER)
    page = client.get(f"/messages/{qid}").text
    assert '<span class="badge hidden">hidden</span>' in page
    assert "<script>alert(1)</script>" not in page  # only ever escaped
    assert "text names another host" in page
    assert 'sandbox="" referrerpolicy="no-referrer" title="Sanitised preview' in page
    preview = client.get(f"/messages/{qid}/preview")
    assert "sandbox" in preview.headers["content-security-policy"]
    assert "<script" not in preview.text.split("</style>", 1)[1]


def test_reject_with_notice_delete_and_download(console: Console) -> None:
    rejected = console.quarantine(plain(REVIEW_ASK, mid="<r@s>"))
    deleted = console.quarantine(plain(REVIEW_ASK, mid="<d@s>"))
    client = console.signed_in(Role.REVIEWER)
    token = csrf_of(client.get("/queue").text)
    eml = client.get(f"/messages/{deleted}/download")
    assert eml.content == console.store.raw(deleted)
    assert eml.headers["content-disposition"] == f'attachment; filename="{deleted}.eml"'
    page = client.post(
        f"/messages/{rejected}/reject", data={"csrf_token": token, "reason": "extortion", "notify": "on"}
    )
    assert "rejected; notice sent to support@seller.example" in page.text
    assert console.hop.messages[0].rcpt_tos == ["support@seller.example"]
    page = client.post(f"/messages/{deleted}/delete", data={"csrf_token": token, "reason": ""})
    assert "delete not done: delete needs a reason" in page.text
    page = client.post(f"/messages/{deleted}/delete", data={"csrf_token": token, "reason": "spam"})
    assert f"{deleted} deleted" in page.text
    again = client.post(f"/messages/{deleted}/release", data={"csrf_token": token, "reason": "x"})
    assert "release not done" in again.text
