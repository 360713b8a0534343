"""The console's user management page: add users, change roles, disable, enable, set passwords.

Admins only. Every action goes through the review service, which applies the
same rules as ``gateway users ...`` (name and password rules, the last enabled
admin keeps admin) and writes the audit log. Each form posts, the outcome is
flashed, and the browser is sent back to ``/users``.

``routes()`` is mounted by :func:`gateway.web.app.create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.results import InputError
from gateway.admin.users import MIN_PASSWORD_LENGTH
from gateway.store import ConflictError, NotFoundError
from gateway.store.records import Role
from gateway.web.auth import require, sign_in, signed_in
from gateway.web.deps import console, flash, render
from gateway.web.forms import text


def _back() -> RedirectResponse:
    return RedirectResponse("/users", status_code=303)


def _target(request: Request) -> str:
    return str(request.path_params["name"])


def _new_password(form: FormData) -> str:
    """The password typed twice (the service checks its length)."""
    password = form.get("password")
    confirm = form.get("confirm")
    if not isinstance(password, str) or not password:
        raise InputError("type the new password twice")
    if password != confirm:
        raise InputError("the two passwords differ; nothing was changed")
    return password


def _why(exc: Exception) -> str:
    # A ConflictError's text starts with the user name, which the flash already says.
    return exc.detail if isinstance(exc, ConflictError) else str(exc)


async def _attempt(request: Request, failed: str, action: Callable[[], Awaitable[str]]) -> None:
    """Run ``action`` and flash its message, or ``failed`` and the service's reason."""
    try:
        done = await action()
    except (InputError, ConflictError, NotFoundError) as exc:
        flash(request, "error", f"{failed}: {_why(exc)}")
        return
    flash(request, "ok", done)


@require(Role.ADMIN)
async def users_page(request: Request) -> Response:
    """Every console user with their state, and the forms to add and change them."""
    context = {
        "page_title": "Users",
        "users": await console(request).service.list_users(),
        "roles": [r.value for r in Role],
        "me": signed_in(request).name,
        "min_password": MIN_PASSWORD_LENGTH,
    }
    return render(request, "users.html", context)


@require(Role.ADMIN)
async def add_user(request: Request) -> Response:
    """Create a user from the add form."""
    form = await request.form()
    name = text(form, "name", 100) or ""
    role = text(form, "role", 20) or ""

    async def add() -> str:
        user = await console(request).service.add_user(name, _new_password(form), role, actor=signed_in(request).name)
        return f"User {user.name} added as {user.role.value}."

    await _attempt(request, f"User {name or '(no name)'} not added", add)
    return _back()


@require(Role.ADMIN)
async def change_role(request: Request) -> Response:
    """Give a user another role (the service refuses to demote the last enabled admin)."""
    name = _target(request)
    role = text(await request.form(), "role", 20) or ""

    async def change() -> str:
        user = await console(request).service.set_role(name, role, actor=signed_in(request).name)
        return f"User {user.name} is now {user.role.value}."

    await _attempt(request, f"Role of {name} not changed", change)
    return _back()


async def _set_disabled(request: Request, disabled: bool) -> Response:
    name = _target(request)
    verb = "disabled" if disabled else "enabled"

    async def change() -> str:
        user = await console(request).service.set_disabled(name, disabled, actor=signed_in(request).name)
        return f"User {user.name} {verb}." + (" Their open sessions have ended." if disabled else "")

    await _attempt(request, f"User {name} not {verb}", change)
    return _back()


@require(Role.ADMIN)
async def disable_user(request: Request) -> Response:
    """Stop a user from signing in; their open sessions end at their next request."""
    return await _set_disabled(request, True)


@require(Role.ADMIN)
async def enable_user(request: Request) -> Response:
    """Let a disabled user sign in again."""
    return await _set_disabled(request, False)


@require(Role.ADMIN)
async def set_password(request: Request) -> Response:
    """Replace a user's password (typed twice); their older sessions end."""
    name = _target(request)
    form = await request.form()
    me = signed_in(request).name

    async def change() -> str:
        user = await console(request).service.set_password(name, _new_password(form), actor=me)
        if user.name != me:
            return f"Password of {user.name} changed; their open sessions have ended."
        # A password change ends older sessions, this one too: start a fresh one for this browser.
        sign_in(request, user)
        return "Your password was changed; your other sessions have ended."

    await _attempt(request, f"Password of {name} not changed", change)
    return _back()


def routes() -> list[BaseRoute]:
    """The users page and its actions, mounted by :func:`gateway.web.app.create_app`."""
    return [
        Route("/users", users_page, methods=["GET"]),
        Route("/users", add_user, methods=["POST"]),
        Route("/users/{name}/role", change_role, methods=["POST"]),
        Route("/users/{name}/disable", disable_user, methods=["POST"]),
        Route("/users/{name}/enable", enable_user, methods=["POST"]),
        Route("/users/{name}/password", set_password, methods=["POST"]),
    ]
