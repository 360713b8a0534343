"""The users page: admins add users, change roles, disable, enable and set passwords (real store and service)."""

from __future__ import annotations

import asyncio
from html import unescape

import pytest
from starlette.testclient import TestClient

from gateway.store.records import AuditQuery, Role, User
from tests.unit.web.conftest import PASSWORD, Console, csrf_of, login

NEW_PASSWORD = "a different long passphrase"
ACTIONS = ("role", "disable", "enable", "password")


def users(console: Console) -> dict[str, User]:
    return {u.name: u for u in asyncio.run(console.service.list_users())}


def token(client: TestClient) -> str:
    return csrf_of(client.get("/queue").text)


def post(client: TestClient, path: str, **form: str) -> str:
    """Post a users form with the session's token; the text of the page it redirects to."""
    response = client.post(path, data={"csrf_token": token(client), **form}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/users"
    return unescape(client.get("/users").text)


def can_sign_in(console: Console, name: str, password: str) -> bool:
    return login(console.client(), name, password).status_code == 303


def audited(console: Console, action: str, target: str) -> list[tuple[str, str]]:
    page = asyncio.run(console.service.audit_log(AuditQuery(action=action, target=target)))
    return [(e.actor, e.result.value) for e in page.items]


def test_admin_sees_every_user_with_its_forms(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    console.user("rita", Role.REVIEWER)
    page = admin.get("/users")
    assert page.status_code == 200
    assert "<h1>Users</h1>" in page.text
    for name in ("ada", "rita"):
        for action in ("role", "disable", "password"):
            assert f'action="/users/{name}/{action}"' in page.text
    assert 'action="/users"' in page.text
    assert '<a href="/users" aria-current="page">Users</a>' in page.text
    assert "never" in page.text  # rita has not signed in yet


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.VIEWER])
def test_non_admins_get_403_on_the_page_and_every_action(console: Console, role: Role) -> None:
    console.user("ada", Role.ADMIN)
    client = console.signed_in(role, "sam")
    assert 'href="/users"' not in client.get("/queue").text  # not offered in the navigation
    page = client.get("/users")
    assert page.status_code == 403
    assert "needs the admin role" in page.text
    before = users(console)
    csrf = token(client)
    attempts = [("/users", {"name": "eve", "role": "admin", "password": PASSWORD, "confirm": PASSWORD})]
    attempts += [
        (f"/users/{target}/{action}", {"role": "admin", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        for target in ("sam", "ada")
        for action in ACTIONS
    ]
    for path, form in attempts:
        response = client.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)
        assert response.status_code == 403, path
    assert users(console) == before
    assert can_sign_in(console, "ada", PASSWORD)


def test_add_user_then_they_can_sign_in(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    page = post(admin, "/users", name="rita", role="reviewer", password=PASSWORD, confirm=PASSWORD)
    assert "User rita added as reviewer." in page
    assert users(console)["rita"].role is Role.REVIEWER
    assert not users(console)["rita"].disabled
    assert can_sign_in(console, "rita", PASSWORD)
    assert audited(console, "user_add", "rita") == [("ada", "ok")]


def test_mismatched_passwords_create_nobody(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    page = post(admin, "/users", name="rita", role="viewer", password=PASSWORD, confirm=PASSWORD + "x")
    assert "User rita not added: the two passwords differ; nothing was changed" in page
    assert "rita" not in users(console)
    assert audited(console, "user_add", "rita") == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "rita", "role": "viewer", "password": "short", "confirm": "short"}, "at least 15 characters"),
        ({"name": "bad name", "role": "viewer", "password": PASSWORD, "confirm": PASSWORD}, "invalid user name"),
        ({"name": "rita", "role": "root", "password": PASSWORD, "confirm": PASSWORD}, "unknown role 'root'"),
        ({"name": "rita", "role": "viewer"}, "type the new password twice"),
    ],
)
def test_the_service_rules_apply_to_new_users(console: Console, form: dict[str, str], message: str) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    page = post(admin, "/users", **form)
    assert message in page
    assert set(users(console)) == {"ada"}


def test_duplicate_name_is_refused(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    console.user("rita", Role.VIEWER)
    page = post(admin, "/users", name="rita", role="admin", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert "User rita not added:" in page
    assert users(console)["rita"].role is Role.VIEWER
    assert can_sign_in(console, "rita", PASSWORD)
    assert not can_sign_in(console, "rita", NEW_PASSWORD)


def test_role_change_takes_effect(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    rita = console.signed_in(Role.VIEWER, "rita")
    assert rita.get("/users").status_code == 403
    page = post(admin, "/users/rita/role", role="admin")
    assert "User rita is now admin." in page
    assert users(console)["rita"].role is Role.ADMIN
    assert rita.get("/users").status_code == 200  # her open session has the new role at once
    assert audited(console, "user_role", "rita") == [("ada", "ok")]


def test_disable_ends_sign_in_and_open_sessions_then_enable(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    rita = console.signed_in(Role.REVIEWER, "rita")
    assert rita.get("/queue", follow_redirects=False).status_code == 200
    page = post(admin, "/users/rita/disable")
    assert "User rita disabled." in page
    assert users(console)["rita"].disabled
    assert 'action="/users/rita/enable"' in page
    response = rita.get("/queue", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert not can_sign_in(console, "rita", PASSWORD)
    page = post(admin, "/users/rita/enable")
    assert "User rita enabled." in page
    assert not users(console)["rita"].disabled
    assert can_sign_in(console, "rita", PASSWORD)
    assert audited(console, "user_disable", "rita") == [("ada", "ok")]
    assert audited(console, "user_enable", "rita") == [("ada", "ok")]


def test_set_password(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    rita = console.signed_in(Role.VIEWER, "rita")
    page = post(admin, "/users/rita/password", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert "Password of rita changed" in page
    assert rita.get("/queue", follow_redirects=False).status_code == 303  # her older session ended
    assert not can_sign_in(console, "rita", PASSWORD)
    assert can_sign_in(console, "rita", NEW_PASSWORD)
    assert audited(console, "user_password", "rita") == [("ada", "ok")]


def test_set_password_refuses_a_mismatch(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    console.user("rita", Role.VIEWER)
    page = post(admin, "/users/rita/password", password=NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert "Password of rita not changed: the two passwords differ" in page
    assert can_sign_in(console, "rita", PASSWORD)
    assert audited(console, "user_password", "rita") == []


def test_own_password_change_keeps_this_session_and_ends_the_others(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    other = console.client()
    assert login(other, "ada", PASSWORD).status_code == 303
    page = post(admin, "/users/ada/password", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert "Your password was changed; your other sessions have ended." in page
    assert admin.get("/users").status_code == 200
    assert other.get("/queue", follow_redirects=False).status_code == 303
    assert can_sign_in(console, "ada", NEW_PASSWORD)


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    page = post(admin, "/users/ada/role", role="viewer")
    assert "Role of ada not changed: ada is the last enabled admin; make another admin first" in page
    page = post(admin, "/users/ada/disable")
    assert "User ada not disabled: ada is the last enabled admin; make another admin first" in page
    ada = users(console)["ada"]
    assert ada.role is Role.ADMIN
    assert not ada.disabled
    assert audited(console, "user_role", "ada") == audited(console, "user_disable", "ada") == []


def test_another_admin_can_be_disabled(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    console.user("bob", Role.ADMIN)
    page = post(admin, "/users/bob/disable")
    assert "User bob disabled." in page
    assert users(console)["bob"].disabled


def test_unknown_user_is_an_error_message(console: Console) -> None:
    admin = console.signed_in(Role.ADMIN, "ada")
    page = post(admin, "/users/nobody/role", role="viewer")
    assert "Role of nobody not changed: no user with id 'nobody'" in page
    assert "nobody" not in users(console)
