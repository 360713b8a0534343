"""The sign-in and sign-out views."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.web.auth import current_user, safe_next, sign_in, sign_out
from gateway.web.deps import console, render

log = structlog.get_logger(__name__)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request) -> Response:
    """The sign-in form (signed-in users go straight on)."""
    target = safe_next(request.query_params.get("next"))
    if await current_user(request) is not None:
        return RedirectResponse(target, status_code=303)
    signed_out = request.query_params.get("signed_out") == "1"
    return render(request, "login.html", {"next": target, "name": "", "error": "", "signed_out": signed_out})


async def login_submit(request: Request) -> Response:
    """Check the credentials (rate-limited) and start a session."""
    app = console(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    client = _client(request)
    context = {"next": target, "name": name, "signed_out": False}
    wait = app.limiter.retry_after(name, client)
    if wait:
        log.warning("console_login_throttled", user=name, source=client, retry_after=wait)
        minutes = (wait + 59) // 60
        error = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        return render(request, "login.html", {**context, "error": error}, status_code=429)
    user = await app.service.authenticate(name, password, source=client) if name and password else None
    if user is None:
        app.limiter.failed(name, client)
        return render(request, "login.html", {**context, "error": "Wrong user name or password."}, status_code=401)
    app.limiter.succeeded(name)
    sign_in(request, user)
    log.info("console_login", user=user.name, role=user.role.value, source=client)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """End the session (POST with CSRF, so another site cannot sign you out)."""
    user = await current_user(request)
    sign_out(request)
    if user is not None:
        log.info("console_logout", user=user.name)
    return RedirectResponse("/login?signed_out=1", status_code=303)
