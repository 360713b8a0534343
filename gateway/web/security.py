"""Response headers that make every console page hard to abuse.

The console shows hostile content (quarantined mail), so the page itself must
not be able to run anything it did not ship: a strict Content-Security-Policy
without inline script or style, no framing by other sites, no referrer, no
MIME sniffing, and no caching of pages that hold message content. A response
that sets its own CSP (the sandboxed HTML preview) keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The console's own policy: scripts, styles, images and frames only from the console itself.
CONSOLE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own form posts.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
}


class SecurityHeadersMiddleware:
    """Adds the console's security headers to every HTTP response that does not set them itself.

    Args:
        app: the wrapped application.
        hsts: also send Strict-Transport-Security (only when served over HTTPS).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, adding the headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = CONSOLE_CSP
                if "x-frame-options" not in headers:
                    headers["X-Frame-Options"] = "DENY"
                for name, value in _COMMON.items():
                    headers.setdefault(name, value)
                if not is_static:
                    # Pages carry message content and a CSRF token: never keep them.
                    headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
