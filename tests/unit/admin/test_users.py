"""Console users: argon2 hashes, roles, password rules, sign-in checks, last-admin guard, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.admin.results import InputError
from gateway.admin.users import UserManager
from gateway.store import ConflictError, NotFoundError, SqlStore
from gateway.store.records import AuditQuery, AuditResult, Role

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)
GOOD = "correct horse battery staple"


@pytest.fixture
def users(store: SqlStore) -> UserManager:
    return UserManager(store, lambda: NOW)


async def test_added_user_signs_in_with_the_right_password_only(users: UserManager, store: SqlStore) -> None:
    """A new user authenticates with its password, not with another; the hash is argon2, never the password."""
    user = await users.add("alice", GOOD, "reviewer", actor="root")
    assert (user.name, user.role, user.disabled) == ("alice", Role.REVIEWER, False)
    stored = store.credentials("alice").password_hash
    assert stored.startswith("$argon2id$")
    assert GOOD not in stored
    assert await users.authenticate("alice", "wrong horse battery staple") is None
    signed_in = await users.authenticate("alice", GOOD, source="127.0.0.1")
    assert signed_in is not None
    assert signed_in.last_login_at == NOW


async def test_unknown_wrong_and_disabled_all_fail_alike(users: UserManager, store: SqlStore) -> None:
    """Unknown user, wrong password and disabled account all return None; a disabled user can be re-enabled."""
    await users.add("bob", GOOD, Role.VIEWER, actor="root")
    await users.add("root", GOOD, Role.ADMIN, actor="setup")
    await users.set_disabled("bob", True, actor="root")
    assert await users.authenticate("nobody", GOOD) is None
    assert await users.authenticate("bob", GOOD) is None
    assert await users.authenticate("root", "x" * 20) is None
    assert store.credentials("bob").user.last_login_at is None
    await users.set_disabled("bob", False, actor="root")
    assert await users.authenticate("bob", GOOD) is not None


async def test_login_audit_rows(users: UserManager, store: SqlStore) -> None:
    """Every sign-in attempt is in the audit log with its result and source."""
    await users.add("carol", GOOD, Role.ADMIN, actor="setup")
    await users.authenticate("carol", GOOD, source="10.0.0.5")
    await users.authenticate("carol", "wrong wrong wrong wrong", source="10.0.0.6")
    await users.authenticate("mallory", GOOD, source="10.0.0.7")
    rows = store.list_audit(AuditQuery(action="login")).items
    assert [(r.actor, r.result) for r in rows] == [
        ("mallory", AuditResult.REFUSED),
        ("carol", AuditResult.REFUSED),
        ("carol", AuditResult.OK),
    ]
    assert rows[0].detail == "unknown user from 10.0.0.7"
    assert rows[1].detail == "wrong password from 10.0.0.6"


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("dave", "short", "viewer", "at least 15"),
        ("dave", "x" * 2000, "viewer", "at most 1024"),
        ("dave", GOOD, "superuser", "unknown role"),
        ("bad name", GOOD, "viewer", "invalid user name"),
        ("", GOOD, "viewer", "invalid user name"),
    ],
)
async def test_bad_input_is_refused_with_a_reason(
    users: UserManager, name: str, password: str, role: str, message: str
) -> None:
    """Short passwords, unknown roles and odd names are refused with a message saying what is allowed."""
    with pytest.raises(InputError, match=message):
        await users.add(name, password, role, actor="root")


async def test_duplicate_name_is_a_conflict(users: UserManager) -> None:
    """Adding an existing name fails and keeps the first user's password."""
    await users.add("erin", GOOD, Role.VIEWER, actor="root")
    with pytest.raises(ConflictError, match="already exists"):
        await users.add("erin", "another long passphrase", Role.ADMIN, actor="root")
    assert await users.authenticate("erin", GOOD) is not None


async def test_password_is_nfkc_normalised(users: UserManager) -> None:
    """A password typed with compatibility characters (fullwidth) matches its normal form (NIST 800-63B)."""
    await users.add("fay", "ｆｕｌｌｗｉｄｔｈ passphrase ok", Role.VIEWER, actor="root")
    assert await users.authenticate("fay", "fullwidth passphrase ok") is not None


async def test_role_and_password_changes(users: UserManager, store: SqlStore) -> None:
    """Role and password changes take effect and are audited; the old password stops working."""
    await users.add("root", GOOD, Role.ADMIN, actor="setup")
    await users.add("gus", GOOD, Role.VIEWER, actor="root")
    assert (await users.set_role("gus", "admin", actor="root")).role is Role.ADMIN
    await users.set_password("gus", "a brand new long passphrase", actor="root")
    assert await users.authenticate("gus", GOOD) is None
    assert await users.authenticate("gus", "a brand new long passphrase") is not None
    actions = {r.action for r in store.list_audit(AuditQuery(target="gus")).items}
    assert {"user_add", "user_role", "user_password", "login"} <= actions
    with pytest.raises(NotFoundError):
        await users.set_role("nobody", "viewer", actor="root")


async def test_the_last_admin_cannot_be_demoted_or_disabled(users: UserManager) -> None:
    """Nobody can lock everyone out: the last enabled admin keeps its role and stays enabled."""
    await users.add("root", GOOD, Role.ADMIN, actor="setup")
    with pytest.raises(ConflictError, match="last enabled admin"):
        await users.set_role("root", "reviewer", actor="root")
    with pytest.raises(ConflictError, match="last enabled admin"):
        await users.set_disabled("root", True, actor="root")
    await users.add("second", GOOD, Role.ADMIN, actor="root")
    assert (await users.set_disabled("root", True, actor="second")).disabled


def test_roles_include_the_ones_below() -> None:
    """Admin allows reviewer and viewer work, reviewer allows viewer work, viewer only itself."""
    assert Role.ADMIN.allows(Role.REVIEWER)
    assert Role.ADMIN.allows(Role.VIEWER)
    assert Role.REVIEWER.allows(Role.VIEWER)
    assert not Role.REVIEWER.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.REVIEWER)
