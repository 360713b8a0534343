"""Sign-in, sessions, roles, CSRF and security headers of the console (TestClient over a real store)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.routing import Mount, Route

from gateway.store.records import AuditQuery, Role
from gateway.web.app import console_routes
from gateway.web.auth import LoginLimiter
from tests.unit.web.conftest import PASSWORD, REVIEW_ASK, Console, csrf_of, login, plain


def _concrete(path: str, qid: str) -> str:
    return path.replace("{qid}", qid).replace("{name}", "admin1")


def _routes() -> list[Route]:
    return [r for r in console_routes() if isinstance(r, Route)]


def post_routes() -> list[str]:
    """Every state-changing route the console has (new routes are picked up automatically)."""
    return sorted({r.path for r in _routes() if r.methods and "POST" in r.methods})


def get_routes() -> list[str]:
    return sorted({r.path for r in _routes() if r.methods and "GET" in r.methods})


def test_the_console_has_the_expected_state_changing_routes() -> None:
    # A guard against the enumeration below silently finding nothing.
    assert {
        "/login",
        "/logout",
        "/queue/bulk",
        "/messages/{qid}/release",
        "/messages/{qid}/reject",
        "/users",
        "/users/{name}/disable",
        "/users/{name}/password",
    } <= set(post_routes())
    assert not [r for r in console_routes() if isinstance(r, Mount) and r.path != "/static"]


@pytest.mark.parametrize("path", post_routes())
def test_every_post_without_a_valid_csrf_token_is_refused(console: Console, path: str) -> None:
    qid = console.quarantine(plain(REVIEW_ASK))
    client = console.signed_in(Role.ADMIN)
    url = _concrete(path, qid)
    form = {"reason": "csrf test", "ids": qid, "action": "release", "name": "admin1", "password": PASSWORD}
    for attempt in ({}, {"csrf_token": "forged-token"}, {"csrf_token": ""}):
        response = client.post(url, data={**form, **attempt}, follow_redirects=False)
        assert response.status_code == 403, (url, attempt, response.status_code)
        assert "Request refused" in response.text
    # A token in the header from another site's Origin is refused too.
    token = csrf_of(client.get("/queue").text)
    response = client.post(url, data={**form, "csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    # Nothing happened: the message is still held and nobody was relayed to.
    assert console.hop.messages == []
    assert console.store.get_quarantined(qid).status.value == "held"
    assert [(u.name, u.role, u.disabled) for u in asyncio.run(console.service.list_users())] == [
        ("admin1", Role.ADMIN, False)
    ]
    assert asyncio.run(console.service.audit_log(AuditQuery(action="user_password"))).items == ()


@pytest.mark.parametrize("path", [p for p in get_routes() if p != "/login"])
def test_pages_are_not_reachable_signed_out(console: Console, path: str) -> None:
    qid = console.quarantine(plain(REVIEW_ASK))
    client = console.client()
    response = client.get(_concrete(path, qid), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert qid.encode() not in response.content


def test_sign_in_then_out(console: Console) -> None:
    console.user("anna", Role.REVIEWER)
    client = console.client()
    assert client.get("/queue", follow_redirects=False).status_code == 303
    response = login(client, "anna", PASSWORD)
    assert response.status_code == 303
    page = client.get("/queue")
    assert page.status_code == 200
    assert "anna" in page.text
    assert "Sign out" in page.text
    cookie = client.cookies.get("gateway-console")
    assert cookie
    token = csrf_of(page.text)
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login?signed_out=1"
    assert client.get("/queue", follow_redirects=False).status_code == 303
    # The old cookie, replayed after sign-out, is worthless.
    replay = console.client()
    replay.cookies.set("gateway-console", cookie)
    assert replay.get("/queue", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_answer(console: Console) -> None:
    console.user("anna", Role.VIEWER)
    client = console.client()
    wrong = login(client, "anna", "not the password at all")
    unknown = login(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.text
    assert "Wrong user name or password." in unknown.text
    audit = asyncio.run(console.service.audit_log(AuditQuery(action="login")))
    assert {e.result.value for e in audit.items} == {"refused"}


def test_login_is_rate_limited_per_name(console: Console) -> None:
    now = [1000.0]
    console.limiter = LoginLimiter(per_name=3, per_client=100, window=60.0, clock=lambda: now[0])
    console.user("anna", Role.VIEWER)
    client = console.client(fresh=True)
    for _ in range(3):
        assert login(client, "anna", "wrong password, guessing").status_code == 401
    # Even the right password is not checked while throttled.
    throttled = login(client, "anna", PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text
    now[0] += 61
    assert login(client, "anna", PASSWORD).status_code == 303


def test_next_parameter_only_leads_inside_the_console(console: Console) -> None:
    console.user("anna", Role.VIEWER)
    client = console.client()
    token = csrf_of(client.get("/login").text)
    for target, expected in (
        ("/queue?status=any", "/queue?status=any"),
        ("//evil.example/x", "/"),
        ("https://e.x", "/"),
    ):
        client.cookies.clear()
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login",
            data={"name": "anna", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_viewer_cannot_release_reject_delete_or_bulk(console: Console) -> None:
    qid = console.quarantine(plain(REVIEW_ASK))
    client = console.signed_in(Role.VIEWER)
    page = client.get(f"/messages/{qid}")
    assert page.status_code == 200
    assert f'action="/messages/{qid}/release"' not in page.text  # no buttons it cannot use
    token = csrf_of(page.text)
    for action in ("release", "reject", "delete", "rescan"):
        response = client.post(f"/messages/{qid}/{action}", data={"csrf_token": token, "reason": "try"})
        assert response.status_code == 403, action
        assert "needs the reviewer role" in response.text
    bulk = client.post("/queue/bulk", data={"csrf_token": token, "ids": qid, "action": "release", "reason": "x"})
    assert bulk.status_code == 403
    assert console.hop.messages == []
    assert console.store.get_quarantined(qid).status.value == "held"


def test_disabled_or_demoted_user_loses_access_at_once(console: Console) -> None:
    console.user("admin0", Role.ADMIN)
    client = console.signed_in(Role.REVIEWER, "rita")
    qid = console.quarantine(plain(REVIEW_ASK))
    asyncio.run(console.service.set_role("rita", Role.VIEWER, actor="admin0"))
    token = csrf_of(client.get("/queue").text)
    assert client.post(f"/messages/{qid}/release", data={"csrf_token": token, "reason": "x"}).status_code == 403
    asyncio.run(console.service.set_disabled("rita", True, actor="admin0"))
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_security_headers_on_every_page(console: Console) -> None:
    client = console.signed_in(Role.VIEWER)
    for path in ("/queue", "/login", "/static/console.css"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    assert client.get("/queue").headers["cache-control"] == "no-store"


def test_session_cookie_flags(console: Console) -> None:
    console.user("anna", Role.VIEWER)
    client = console.client()
    response = login(client, "anna", PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie  # this test config turns secure_cookies off (loopback --dev)

    secure = console.config.model_copy(
        update={"admin": console.config.admin.model_copy(update={"secure_cookies": True})}
    )
    console.config = secure
    https = console.client(https=True, fresh=True)
    response = login(https, "anna", PASSWORD)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-gateway-console=")
    assert "; secure" in cookie.lower()
    assert https.get("/queue").status_code == 200
    assert "max-age=31536000" in https.get("/queue").headers["strict-transport-security"]


def test_unknown_message_is_a_clear_404(console: Console) -> None:
    client = console.signed_in(Role.VIEWER)
    response = client.get("/messages/NOPE123")
    assert response.status_code == 404
    assert "NOPE123" in response.text
    assert "Traceback" not in response.text
