"""One quarantined message: what it is, why it was stopped, and the review actions on it.

The page shows the envelope and headers, the verdict with every finding (its
rule description and the evidence highlighted in the extracted text, marked
visible, hidden, quoted or attachment), links with their real targets,
attachments with declared and true type, the raw source, and the sanitised
HTML preview in a sandboxed frame. Actions (release, reject with optional
notice, delete, rescan) are POST forms asking for a reason; the result is
shown on the page that follows. The ``.eml`` download is an audited export.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.results import InputError
from gateway.mime.types import ParsedMessage
from gateway.store import ConflictError
from gateway.store.records import QuarantineStatus, Role
from gateway.web.auth import require, signed_in
from gateway.web.deps import console, flash, render
from gateway.web.highlight import highlight
from gateway.web.sanitize import html_body, preview_document, sanitise_html

#: The review actions, each a POST to ``/messages/{id}/<action>``.
ACTIONS = ("release", "reject", "delete", "rescan")

#: Raw source shown on the page (the download has all of it).
MAX_RAW_SHOWN = 512 * 1024

#: The preview frame's own policy: nothing but our nonce'd style; sandboxed even if opened directly.
_PREVIEW_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'none'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'self'; sandbox"
)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A link as the reviewer sees it: what the message says and where it really goes."""

    anchor: str
    url: str
    host: str
    where: str
    from_href: bool
    obfuscated: bool
    mismatch: bool  # the visible text names another host than the target


def _link_rows(parsed: ParsedMessage) -> list[LinkRow]:
    rows = []
    for link in parsed.links:
        anchor = link.anchor.strip()
        looks_like_host = "." in anchor and " " not in anchor
        mismatch = bool(link.from_href and looks_like_host and link.host and link.host not in anchor.lower())
        rows.append(
            LinkRow(anchor, link.url, link.host, parsed.located(link.span), link.from_href, link.obfuscated, mismatch)
        )
    return rows


def _qid(request: Request) -> str:
    return str(request.path_params["qid"])


@require(Role.VIEWER)
async def message_page(request: Request) -> Response:
    """The message view."""
    app = console(request)
    qid = _qid(request)
    view = await app.service.show(qid)
    record = view.record
    raw = b""
    if record.has_raw:
        try:
            raw = await app.service.source(qid)
        except ConflictError:  # deleted between the two reads
            raw = b""
    parsed = view.parsed
    findings = record.verdict.findings
    marks = highlight(parsed.texts, findings) if parsed is not None else None
    descriptions = {rule.id: rule.description for rule in app.holder.current.specs.rules}
    context = {
        "page_title": record.subject or f"Message {qid}",
        "m": record,
        "parsed": parsed,
        "parse_error": view.parse_error,
        "findings": findings,
        "descriptions": descriptions,
        "marks": marks,
        "links": _link_rows(parsed) if parsed is not None else [],
        "raw_text": raw[:MAX_RAW_SHOWN].decode("utf-8", "replace"),
        "raw_cut": len(raw) > MAX_RAW_SHOWN,
        "raw_size": view.raw_size,
        "has_html": bool(raw) and html_body(raw) is not None,
        "can_review": signed_in(request).role.allows(Role.REVIEWER),
        "held": record.status is QuarantineStatus.HELD,
    }
    return render(request, "message.html", context)


@require(Role.VIEWER)
async def preview(request: Request) -> Response:
    """The sanitised HTML part, for the sandboxed frame on the message page."""
    raw = await console(request).service.source(_qid(request))
    markup = html_body(raw)
    body = sanitise_html(markup) if markup is not None else "<p>This message has no HTML part.</p>"
    nonce = secrets.token_urlsafe(16)
    headers = {
        "Content-Security-Policy": _PREVIEW_CSP.format(nonce=nonce),
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(preview_document(body, nonce), headers=headers)


@require(Role.VIEWER)
async def download(request: Request) -> Response:
    """The original bytes as an ``.eml`` attachment (audited as an export)."""
    qid = _qid(request)
    raw = await console(request).service.export(qid, user=signed_in(request).name)
    safe = "".join(c for c in qid if c.isalnum() or c in "-_") or "message"
    headers = {"Content-Disposition": f'attachment; filename="{safe}.eml"'}
    return Response(raw, media_type="application/octet-stream", headers=headers)


def _back(qid: str) -> RedirectResponse:
    return RedirectResponse(f"/messages/{qid}", status_code=303)


@require(Role.REVIEWER)
async def act(request: Request) -> Response:
    """Release, reject, delete or rescan one message; the result is flashed on its page."""
    app = console(request)
    qid = _qid(request)
    action = request.url.path.rsplit("/", 1)[1]
    user = signed_in(request).name
    form = await request.form()
    reason = " ".join(str(form.get("reason", "")).split())
    try:
        if action == "rescan":
            rescanned = await app.service.rescan(qid, user=user, reason=reason)
            flash(request, "ok", rescanned.message)
            return _back(qid)
        if not reason:
            raise InputError(f"{action} needs a reason (it is written to the audit log and shown to others)")
        if action == "release":
            result = await app.service.release(qid, user=user, reason=reason)
        elif action == "reject":
            result = await app.service.reject(qid, user=user, reason=reason, notify=form.get("notify") == "on")
        else:
            result = await app.service.delete(qid, user=user, reason=reason)
    except (ConflictError, InputError) as exc:
        flash(request, "error", f"{action} not done: {exc}")
        return _back(qid)
    notice_failed = result.notice is not None and not result.notice.sent
    flash(request, "ok" if result.ok and not notice_failed else "error", result.message)
    return _back(qid)


def routes() -> list[BaseRoute]:
    """The message view, its preview and download, and the actions."""
    return [
        Route("/messages/{qid}", message_page, methods=["GET"]),
        Route("/messages/{qid}/preview", preview, methods=["GET"]),
        Route("/messages/{qid}/download", download, methods=["GET"]),
        *(Route(f"/messages/{{qid}}/{action}", act, methods=["POST"]) for action in ACTIONS),
    ]
