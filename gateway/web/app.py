"""The console application: routes, middleware and error pages.

``create_app(config, service, holder)`` is all a server needs: ``gateway serve``
mounts it next to the SMTP workers, ``gateway admin`` serves it alone, tests
drive it with Starlette's TestClient. Middleware, outermost first: security
headers, signed-cookie sessions, CSRF check on every POST.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin.results import InputError
from gateway.admin.service import ReviewService
from gateway.config import Config
from gateway.policy.holder import PolicyHolder
from gateway.store import ConflictError, NotFoundError
from gateway.store.records import Role
from gateway.web import logviews, messages, queue, signin, users
from gateway.web.auth import CsrfMiddleware, LoginLimiter, RevokedSessions, require
from gateway.web.deps import STATIC, Console, make_templates, render
from gateway.web.security import CONSOLE_CSP, SecurityHeadersMiddleware

log = structlog.get_logger(__name__)

KEY_FILE = "admin.key"


def secret_key(config: Config) -> str:
    """The key that signs session cookies: ``admin.secret_key``, else ``<data_dir>/admin.key``.

    The file is created (mode 0600) with a random key the first time, so sessions
    survive restarts and every process of one installation shares it.
    """
    if config.admin.secret_key is not None:
        return config.admin.secret_key.get_secret_value()
    path = Path(config.data_dir) / KEY_FILE
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: if two processes start together, one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("admin_key_created", path=str(path))
    return key


@require(Role.VIEWER)
async def home(request: Request) -> Response:
    """The console starts at the queue."""
    return RedirectResponse("/queue", status_code=303)


def console_routes() -> list[BaseRoute]:
    """Every route of the console (the log views and the users page included)."""
    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/login", signin.login_page, methods=["GET"]),
        Route("/login", signin.login_submit, methods=["POST"]),
        Route("/logout", signin.logout, methods=["POST"]),
        Route("/queue", queue.queue_page, methods=["GET"]),
        Route("/queue/bulk", queue.bulk_action, methods=["POST"]),
        *messages.routes(),
        *logviews.routes(),
        *users.routes(),
    ]
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {403: "Not allowed", 404: "Not found", 405: "Method not allowed"}
    context = {"page_title": titles.get(exc.status_code, "Error"), "detail": exc.detail}
    return render(request, "error.html", context, status_code=exc.status_code)


async def _not_found(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"page_title": "Not found", "detail": str(exc)}, status_code=404)


async def _conflict(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"page_title": "Not possible now", "detail": str(exc)}, status_code=409)


async def _input_error(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"page_title": "Check your input", "detail": str(exc)}, status_code=400)


_CRASH_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console error</title>
<link rel="stylesheet" href="/static/console.css"></head><body><main class="narrow"><h1>Something went wrong</h1>
<p>The console could not complete this request; nothing was changed by the page itself.
The gateway log has the details (event <code>console_error</code>).</p><p><a href="/">Back to the console</a></p>
</main></body></html>"""


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("console_error", path=request.url.path, method=request.method)
    return HTMLResponse(_CRASH_PAGE, status_code=500, headers={"Content-Security-Policy": CONSOLE_CSP})


def create_app(
    config: Config,
    service: ReviewService,
    holder: PolicyHolder,
    *,
    limiter: LoginLimiter | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """The console as an ASGI application.

    Args:
        config: the gateway configuration (``admin`` section: cookies, session length, key).
        service: the review service; the console reads and acts only through it.
        holder: the running policy (rule descriptions, filters, the policy view and reload).
        limiter: the sign-in rate limiter (tests pass one with a fake clock).
        on_startup: awaited when the server starts (e.g. the ``--dev`` first admin).
        on_shutdown: awaited when the server stops (closes what the caller opened for the app).
    """
    admin = config.admin
    lifetime = int(admin.session_hours * 3600)
    middleware = [
        Middleware(SecurityHeadersMiddleware, hsts=admin.secure_cookies),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key(config),
            # __Host- binds the cookie to this exact origin (browsers require Secure and path=/).
            session_cookie="__Host-gateway-console" if admin.secure_cookies else "gateway-console",
            max_age=lifetime,
            same_site="strict",
            https_only=admin.secure_cookies,
        ),
        Middleware(CsrfMiddleware),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown()

    app = Starlette(
        routes=[*console_routes(), Mount("/static", StaticFiles(directory=STATIC), name="static")],
        middleware=middleware,
        exception_handlers={
            HTTPException: _http_error,
            NotFoundError: _not_found,
            ConflictError: _conflict,
            InputError: _input_error,
            Exception: _crash,
        },
        lifespan=lifespan,
    )
    app.state.console = Console(
        config=config,
        service=service,
        holder=holder,
        templates=make_templates(),
        limiter=limiter or LoginLimiter(),
        revoked=RevokedSessions(lifetime),
    )
    return app
