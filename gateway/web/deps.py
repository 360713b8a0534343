"""What every console view needs: the services, the templates, flash messages.

The application keeps one :class:`Console` in ``app.state.console``; views get
it with :func:`console` and render pages with :func:`render`, which adds the
signed-in user, the CSRF token, the navigation and pending flash messages to
every template's context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates, _TemplateResponse

from gateway.admin.service import ReviewService
from gateway.config import Config
from gateway.policy.holder import PolicyHolder
from gateway.store.records import Role, User
from gateway.web.auth import LoginLimiter, RevokedSessions, csrf_token

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

#: Navigation: (label, path, role needed). Signed-in pages show the links the user's role allows.
NAV: tuple[tuple[str, str, Role], ...] = (
    ("Queue", "/queue", Role.VIEWER),
    ("Decisions", "/decisions", Role.VIEWER),
    ("Dashboard", "/dashboard", Role.VIEWER),
    ("Audit", "/audit", Role.VIEWER),
    ("Policies", "/policies", Role.VIEWER),
    ("Users", "/users", Role.ADMIN),
)

_FLASH_KEY = "flash"
_MAX_FLASHES = 20  # the session is a cookie: keep it small even after a large bulk action


@dataclass(frozen=True, slots=True)
class Flash:
    """A one-time message shown on the next page: ``kind`` is ``ok`` or ``error``."""

    kind: str
    text: str


@dataclass
class Console:
    """The console's collaborators, shared by every request.

    Attributes:
        config: the gateway configuration.
        service: the review service (all data and actions go through it).
        holder: the running policy (policy view and reload).
        templates: the Jinja2 templates.
        limiter: failed sign-ins per name and client.
        revoked: session ids signed out before they expired.
        after_reload: called after a successful policy reload (``gateway serve`` uses it
            to make its SMTP workers reload too).
    """

    config: Config
    service: ReviewService
    holder: PolicyHolder
    templates: Jinja2Templates
    limiter: LoginLimiter
    revoked: RevokedSessions
    after_reload: list[Callable[[], None]] = field(default_factory=list)


def console(request: Request) -> Console:
    """The :class:`Console` of the application serving ``request``."""
    found = request.app.state.console
    assert isinstance(found, Console)
    return found


def flash(request: Request, kind: str, text: str) -> None:
    """Queue a message for the next rendered page (kept in the session)."""
    pending = list(request.session.get(_FLASH_KEY, []))
    pending.append([kind, text[:2000]])
    request.session[_FLASH_KEY] = pending[-_MAX_FLASHES:]


def _pop_flashes(request: Request) -> list[Flash]:
    if _FLASH_KEY not in request.session:
        return []
    return [Flash(str(kind), str(text)) for kind, text in request.session.pop(_FLASH_KEY)]


def _nav(user: User | None) -> list[tuple[str, str]]:
    """The (label, path) links ``user`` may follow: pages their role cannot use are not offered."""
    if user is None:
        return []
    return [(label, path) for label, path, role in NAV if user.role.allows(role)]


def _page_context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "user", None)
    return {
        "user": user,
        "csrf_token": csrf_token(request),
        "nav": _nav(user),
        "path": request.url.path,
        "flashes": _pop_flashes(request),
        "Role": Role,
    }


def make_templates() -> Jinja2Templates:
    """The console's template set: autoescaped, undefined variables are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env, context_processors=[_page_context])


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> _TemplateResponse:
    """Render template ``name`` with ``context`` plus the page context (user, csrf_token, nav, flashes)."""
    return console(request).templates.TemplateResponse(request, name, context or {}, status_code=status_code)
