"""Sign-in, sessions, roles and CSRF protection for the console.

Sessions are signed cookies (Starlette's ``SessionMiddleware``, HttpOnly,
SameSite=Strict, Secure unless ``admin.secure_cookies`` is off). The session
holds the user name, when they signed in, a random session id and the CSRF
token; the user's role and state are read from the store on every request, so
a demoted or disabled user loses access at once, and a password change ends
older sessions. Signing out revokes the session id for the rest of its life.

Every POST must carry the session's CSRF token (form field ``csrf_token`` or
header ``X-CSRF-Token``) and, when the browser sends one, an ``Origin`` of the
console itself: :class:`CsrfMiddleware` refuses anything else with 403 before
any view runs, so a new route cannot forget the check.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.store.records import Role, User

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

_USER = "user"
_SINCE = "since"
_SID = "sid"
_CSRF = "csrf"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Largest form body the CSRF check reads; console forms are a reason and a few ids.
MAX_FORM_BYTES = 256 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]


# -- sessions ---------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (put it in every form)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


@dataclass
class RevokedSessions:
    """Session ids signed out before their cookie expired (kept only until it would have)."""

    lifetime: float
    _until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke(self, sid: str) -> None:
        """Refuse ``sid`` from now on."""
        now = time.time()
        with self._lock:
            self._until = {s: t for s, t in self._until.items() if t > now}
            self._until[sid] = now + self.lifetime

    def __contains__(self, sid: object) -> bool:
        with self._lock:
            return isinstance(sid, str) and self._until.get(sid, 0.0) > time.time()


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (new id and CSRF token: no fixation)."""
    request.session.clear()
    request.session[_USER] = user.name
    request.session[_SINCE] = time.time()
    request.session[_SID] = secrets.token_urlsafe(16)
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session and make its cookie worthless even if a copy survives."""
    from gateway.web.deps import console

    sid = request.session.get(_SID)
    if isinstance(sid, str):
        console(request).revoked.revoke(sid)
    request.session.clear()


async def current_user(request: Request) -> User | None:
    """The signed-in, enabled user of this request, or ``None`` (cached on ``request.state``)."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    request.state.user = user = await _load_user(request)
    return user


async def _load_user(request: Request) -> User | None:
    from gateway.web.deps import console

    name = request.session.get(_USER)
    since = request.session.get(_SINCE)
    if not isinstance(name, str) or not isinstance(since, int | float):
        return None
    app = console(request)
    if request.session.get(_SID) in app.revoked or time.time() - since > app.config.admin.session_hours * 3600:
        request.session.clear()
        return None
    user = next((u for u in await app.service.list_users() if u.name == name), None)
    changed = user.password_changed_at.timestamp() if user is not None and user.password_changed_at else 0.0
    if user is None or user.disabled or changed > since:
        request.session.clear()
        return None
    return user


def signed_in(request: Request) -> User:
    """The user :func:`require` let through (call only inside a view it guards)."""
    user: User | None = getattr(request.state, "user", None)
    assert user is not None, "view not guarded by require()"
    return user


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def require(role: Role) -> Callable[[Endpoint], Endpoint]:
    """Guard a view: signed-out visitors go to the sign-in page, too-low roles get 403.

    Inside the view, :func:`signed_in` returns the user.
    """

    def decorate(view: Endpoint) -> Endpoint:
        @functools.wraps(view)
        async def guarded(request: Request) -> Response:
            user = await current_user(request)
            if user is None:
                return _login_redirect(request)
            if not user.role.allows(role):
                raise HTTPException(403, f"This needs the {role.value} role; you are signed in as {user.role.value}.")
            return await view(request)

        guarded.required_role = role  # type: ignore[attr-defined]  # read by the route table tests
        return guarded

    return decorate


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in (anything else, e.g. ``//evil.example``, becomes ``/``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- login rate limit -------------------------------------------------------------------


@dataclass
class LoginLimiter:
    """Failed sign-ins allowed per user name and per client address within a window.

    After ``per_name`` failures for one name (or ``per_client`` from one address)
    within ``window`` seconds, further attempts are refused with a wait time,
    without checking the password: guessing costs the attacker time, not the
    account its availability for long.
    """

    per_name: int = 5
    per_client: int = 20
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def retry_after(self, name: str, client: str) -> int:
        """Seconds to wait before trying ``name`` from ``client`` again (0: go ahead)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key, limit in ((f"u:{name.lower()}", self.per_name), (f"c:{client}", self.per_client)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(wait, self.window - (now - times[0]))
        return int(wait) + 1 if wait else 0

    def failed(self, name: str, client: str) -> None:
        """Count a failed attempt."""
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10_000:  # bound memory under a spray of names
                self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.window}
            for key in (f"u:{name.lower()}", f"c:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, name: str) -> None:
        """Forget the name's failures (the client's stay: one right password does not clear a spray)."""
        with self._lock:
            self._failures.pop(f"u:{name.lower()}", None)


# -- CSRF -------------------------------------------------------------------------------

_REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Request refused</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body><main class="narrow"><h1>Request refused</h1><p>{reason}</p>
<p>Nothing was changed. <a href="/">Go back to the console</a>, reload the page and try again.</p></main></body></html>
"""


def _refuse(reason: str) -> Response:
    return HTMLResponse(_REFUSED_PAGE.format(reason=reason), status_code=403)


class CsrfMiddleware:
    """Refuses every state-changing request without the session's CSRF token.

    Sits inside ``SessionMiddleware`` (it reads ``scope["session"]``). The form
    body is read here, checked, and handed on unchanged to the view.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass safe methods through; check and replay the body of the others."""
        if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session = scope.get("session") or {}
        expected = session.get(_CSRF)
        origin = headers.get("origin")
        if origin is not None and origin != _own_origin(scope, headers):
            await _refuse(f"The request came from another site ({origin}).")(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:
            await _refuse("The form was too large.")(scope, receive, send)
            return
        token = headers.get(CSRF_HEADER)
        if token is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD, [])
            token = values[0] if values else None
        if not isinstance(expected, str) or not token or not hmac.compare_digest(expected, token):
            reason = (
                "Your session has expired." if not isinstance(expected, str) else "The form's security token is wrong."
            )
            await _refuse(reason)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _own_origin(scope: Scope, headers: Headers) -> str:
    scheme = "https" if scope.get("scheme") == "https" else "http"
    return f"{scheme}://{headers.get('host', '')}"


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
