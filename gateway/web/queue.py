"""The quarantine queue: filters, search, pagination, counts and bulk release/reject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.results import ActionResult, InputError
from gateway.model import Category
from gateway.store.records import QuarantineQuery, QuarantineStatus, Role
from gateway.web.auth import require, signed_in
from gateway.web.deps import console, render
from gateway.web.forms import FieldErrors, choice, day, page_number, text

PAGE_SIZE = 50
#: Most messages one bulk action handles (each release is a relay; keep a request bounded).
MAX_BULK = 200

_FILTERS = ("status", "rule", "category", "language", "account", "profile", "since", "until", "q")
_STATUSES = tuple(s.value for s in QuarantineStatus)
_CATEGORIES = tuple(c.value for c in Category)


@dataclass(frozen=True, slots=True)
class PageLink:
    """A link in the pager: its label, its URL, and whether it is the page shown."""

    label: str
    url: str
    current: bool = False


def _query(request: Request, errors: FieldErrors) -> tuple[QuarantineQuery, dict[str, str], int]:
    params = request.query_params
    status_raw = text(params, "status", 20) or "held"
    status: QuarantineStatus | None = None
    if status_raw in _STATUSES:
        status = QuarantineStatus(status_raw)
    elif status_raw != "any":
        errors.add("status", f"{status_raw!r} is not one of any, {', '.join(_STATUSES)}")
        status_raw, status = "held", QuarantineStatus.HELD
    page = page_number(params, errors)
    query = QuarantineQuery(
        status=status,
        rule=text(params, "rule"),
        category=choice(params, "category", _CATEGORIES, errors),
        language=text(params, "language", 10),
        account=text(params, "account"),
        profile=text(params, "profile"),
        since=day(params, "since", errors),
        until=day(params, "until", errors, end=True),
        text=text(params, "q"),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    shown = {name: text(params, name) or "" for name in _FILTERS}
    shown["status"] = status_raw
    return query, shown, page


def _url(filters: dict[str, str], **changes: Any) -> str:
    values = {k: v for k, v in {**filters, **changes}.items() if v not in ("", None, 1) or k == "status"}
    return "/queue?" + urlencode(values)


def _pager(filters: dict[str, str], page: int, total: int) -> list[PageLink]:
    last = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    wanted = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
    return [PageLink(str(n), _url(filters, page=n), n == page) for n in wanted]


@require(Role.VIEWER)
async def queue_page(request: Request) -> Response:
    """The queue, newest first, filtered as the query string says."""
    app = console(request)
    errors = FieldErrors()
    query, filters, page = _query(request, errors)
    result = await app.service.list_messages(query)
    counts = await app.service.counts()
    policy = app.holder.current
    last = max(1, (result.total + PAGE_SIZE - 1) // PAGE_SIZE)
    context = {
        "page_title": "Quarantine queue",
        "messages": result.items,
        "total": result.total,
        "first": query.offset + 1 if result.items else 0,
        "last_shown": query.offset + len(result.items),
        "filters": filters,
        "errors": errors.messages(),
        "counts": [(s.value, counts.get(s, 0), _url(filters, status=s.value, page=1)) for s in QuarantineStatus],
        "any_url": _url(filters, status="any", page=1),
        "statuses": _STATUSES,
        "categories": _CATEGORIES,
        "rules": sorted(r.id for r in policy.specs.rules),
        "profiles": sorted(policy.specs.profiles),
        "languages": sorted(policy.specs.lexicons),
        "pages": _pager(filters, page, result.total),
        "prev_url": _url(filters, page=page - 1) if page > 1 else "",
        "next_url": _url(filters, page=page + 1) if page < last else "",
        "can_review": signed_in(request).role.allows(Role.REVIEWER),
        "max_bulk": MAX_BULK,
    }
    return render(request, "queue.html", context, status_code=400 if errors else 200)


@require(Role.REVIEWER)
async def bulk_action(request: Request) -> Response:
    """Release or reject the ticked messages with one reason; shows one result per message."""
    app = console(request)
    user = signed_in(request)
    form = await request.form()
    ids = list(dict.fromkeys(str(v) for v in form.getlist("ids") if str(v).strip()))
    action = str(form.get("action", ""))
    reason = str(form.get("reason", ""))
    notify = form.get("notify") == "on"
    error = ""
    results: tuple[ActionResult, ...] = ()
    if action not in ("release", "reject"):
        error = f"action: {action!r} is not release or reject"
    elif not ids:
        error = "No message was selected: tick the messages to act on."
    elif len(ids) > MAX_BULK:
        error = f"{len(ids)} messages selected; at most {MAX_BULK} at a time."
    else:
        try:
            if action == "release":
                results = await app.service.release_many(ids, user=user.name, reason=reason)
            else:
                results = await app.service.reject_many(ids, user=user.name, reason=reason, notify=notify)
        except InputError as exc:
            error = str(exc)
    context = {
        "page_title": f"Bulk {action}" if action in ("release", "reject") else "Bulk action",
        "action": action,
        "results": results,
        "error": error,
        "ok": sum(1 for r in results if r.ok),
        "back": str(form.get("back", "")) if str(form.get("back", "")).startswith("/queue") else "/queue",
    }
    return render(request, "bulk_result.html", context, status_code=400 if error else 200)
