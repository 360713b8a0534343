"""The console's log views: decision log, dashboard, audit log and the policy page.

Every view reads through the review service (decisions, stats, audit log) and
the policy holder (loaded rules, reload); nothing here touches the store. The
filters live in the URL (see :mod:`gateway.web.logquery`) so every chart bar
and every rule badge can link to the matching slice of the decision log.

``routes()`` is mounted by :func:`gateway.web.app.create_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.model import Action, Category
from gateway.policy.holder import ReloadResult
from gateway.store.records import Count, DecisionStats, QuarantineStatus, Role
from gateway.web import charts
from gateway.web.auth import require, signed_in
from gateway.web.deps import console, render
from gateway.web.logquery import (
    DECISION_FIELDS,
    OUTCOMES,
    PERIODS,
    FilterError,
    Period,
    audit_filters,
    decision_filters,
    pager,
    period,
    query_string,
)
from gateway.web.policyview import find_rule, rule_examples, rule_row, summarize

log = structlog.get_logger(__name__)

#: How many rules and accounts the dashboard's "top" charts show.
TOP = 10

#: Categories drawn separately in the per-day category chart (the rest are one "other" layer).
CATEGORY_SERIES = 7

#: Audit actions offered in the filter (the field also takes any other value typed in).
AUDIT_ACTIONS = (
    "release",
    "reject",
    "delete",
    "rescan",
    "notify",
    "export",
    "purge",
    "login",
    "policy_reload",
    "user_add",
    "user_role",
    "user_password",
    "user_disable",
    "user_enable",
)

#: Audit actions whose target is a quarantined message (the page links to it).
MESSAGE_ACTIONS = frozenset({"release", "reject", "delete", "rescan", "notify", "export"})


def _today() -> date:
    return datetime.now(UTC).date()


def _choices(request: Request) -> dict[str, Any]:
    """The filter forms' options, from the running policy."""
    policy = console(request).holder.current
    return {
        "actions": [a.value for a in Action],
        "outcome_choices": OUTCOMES,
        "categories": [c.value for c in Category],
        "profiles": sorted(policy.specs.profiles),
        "languages": sorted(code for code in policy.specs.lexicons if code != "*"),
        "rules": sorted(r.id for r in policy.specs.rules),
    }


# -- decision log ---------------------------------------------------------------------


@require(Role.VIEWER)
async def decisions_page(request: Request) -> Response:
    """Every decision, newest first, filtered by action, rule, category, language, account, profile and days."""
    app = console(request)
    params = dict(request.query_params)
    context: dict[str, Any] = {"page_title": "Decision log", **_choices(request)}
    try:
        filters = decision_filters(params)
    except FilterError as exc:
        values = {name: str(params.get(name, "")) for name in DECISION_FIELDS}
        context |= {"filters": values, "error": str(exc), "rows": (), "pager": None}
        return render(request, "decisions.html", context, status_code=400)
    result = await app.service.decisions(filters.query)
    context |= {
        "filters": filters.values,
        "error": "",
        "rows": result.items,
        "pager": pager(filters.values, filters.page, result.total, len(result.items)),
        "link": lambda **changes: "/decisions" + query_string({**filters.values, **changes}),
    }
    return render(request, "decisions.html", context)


# -- dashboard ------------------------------------------------------------------------


def _log_url(chosen: Period, **filters: str) -> str:
    """The decision log filtered on ``filters`` within the dashboard's period."""
    return "/decisions" + query_string({**chosen.log_filters(), **filters})


def _bars(counts: Sequence[Count], chosen: Period, field: str, limit: int | None = None) -> list[charts.Bar]:
    shown = counts[:limit] if limit is not None else counts
    return [
        charts.Bar(c.key or "(none)", c.count, _log_url(chosen, **{field: c.key}) if c.key else None) for c in shown
    ]


def _per_day(stats: DecisionStats, chosen: Period) -> tuple[list[str], list[charts.Series], list[str]]:
    """Columns (every day of the period, empty ones too), one series per action, and each day's log link."""
    days = [d.isoformat() for d in charts.days_between(chosen.first, chosen.last)]
    counts = {c.key: c.count for c in stats.by_day_action}
    series = [
        charts.Series(action.value, tuple(counts.get(f"{day} {action.value}", 0) for day in days), colour)
        for action, colour in ((a, charts.ACTION_COLOURS[a.value]) for a in Action)
    ]
    links = ["/decisions" + query_string({"since": day, "until": day}) for day in days]
    return days, series, links


def _per_day_category(stats: DecisionStats, days: list[str]) -> list[charts.Series]:
    """One series per category, the most frequent first; beyond the palette, the rest are summed as "other"."""
    counts = {c.key: c.count for c in stats.by_day_category}
    ranked = [c.key for c in stats.by_category]
    shown, rest = ranked[:CATEGORY_SERIES], ranked[CATEGORY_SERIES:]
    series = [
        charts.Series(name, tuple(counts.get(f"{day} {name}", 0) for day in days), colour)
        for name, colour in zip(shown, charts.PALETTE, strict=False)
    ]
    if rest:
        other = tuple(sum(counts.get(f"{day} {name}", 0) for name in rest) for day in days)
        series.append(charts.Series(f"other ({len(rest)} categories)", other, charts.OTHER_COLOUR))
    return series


@require(Role.VIEWER)
async def dashboard_page(request: Request) -> Response:
    """Counts and charts of the decisions in a chosen period."""
    app = console(request)
    params = dict(request.query_params)
    try:
        chosen = period(params, _today())
    except FilterError as exc:
        form = {name: str(params.get(name, "")) for name in ("period", "since", "until")}
        context: dict[str, Any] = {"page_title": "Dashboard", "error": str(exc), "periods": PERIODS, "form": form}
        return render(request, "dashboard.html", context, status_code=400)
    stats = await app.service.decision_stats(chosen.since, chosen.until)
    held = (await app.service.counts()).get(QuarantineStatus.HELD, 0)
    days, series, day_links = _per_day(stats, chosen)
    by_action = {c.key: c.count for c in stats.by_action}
    period_text = f"{chosen.label} (UTC)"
    context = {
        "page_title": "Dashboard",
        "error": "",
        "periods": PERIODS,
        "form": {"period": chosen.choice, "since": chosen.first.isoformat(), "until": chosen.last.isoformat()},
        "period": chosen,
        "stats": stats,
        "held": held,
        "actions": [(a.value, by_action.get(a.value, 0), _log_url(chosen, action=a.value)) for a in Action],
        "outcomes": [(c.key, c.count, _log_url(chosen, outcome=c.key)) for c in stats.by_outcome],
        "all_url": _log_url(chosen),
        "per_day": list(zip(days, *(s.values for s in series), strict=True)),
        "series_names": [s.name for s in series],
        "charts": {
            "days": charts.stacked_columns(
                "chart-days", f"Decisions per day by action, {period_text}", days, series, hrefs=day_links
            ),
            "day_categories": charts.stacked_columns(
                "chart-day-categories",
                f"Decisions per day by category, {period_text}",
                days,
                _per_day_category(stats, days),
                hrefs=day_links,
                empty="No rule hit in this period.",
            ),
            "categories": charts.bar_chart(
                "chart-categories",
                f"Decisions by category, {period_text}",
                _bars(stats.by_category, chosen, "category"),
                colour=charts.PALETTE[0],
                empty="No rule hit in this period.",
            ),
            "rules": charts.bar_chart(
                "chart-rules",
                f"Top {TOP} rules, {period_text}",
                _bars(stats.by_rule, chosen, "rule", TOP),
                colour=charts.PALETTE[3],
                empty="No rule hit in this period.",
            ),
            "languages": charts.bar_chart(
                "chart-languages",
                f"Decisions by language of the matched text, {period_text}",
                _bars(stats.by_language, chosen, "language"),
                colour=charts.PALETTE[2],
                empty="No language-specific rule hit in this period.",
            ),
            "accounts": charts.bar_chart(
                "chart-accounts",
                f"Top {TOP} accounts by decisions, {period_text}",
                _bars(stats.by_account, chosen, "account", TOP),
                colour=charts.PALETTE[4],
            ),
        },
    }
    return render(request, "dashboard.html", context)


# -- audit log ------------------------------------------------------------------------


@require(Role.VIEWER)
async def audit_page(request: Request) -> Response:
    """Every admin action, newest first, filtered by actor, action, target and days."""
    app = console(request)
    params = dict(request.query_params)
    context: dict[str, Any] = {
        "page_title": "Audit log",
        "audit_actions": AUDIT_ACTIONS,
        "message_actions": MESSAGE_ACTIONS,
    }
    try:
        filters = audit_filters(params)
    except FilterError as exc:
        values = {name: str(params.get(name, "")) for name in ("actor", "action", "target", "since", "until")}
        context |= {"filters": values, "error": str(exc), "rows": (), "pager": None}
        return render(request, "audit.html", context, status_code=400)
    result = await app.service.audit_log(filters.query)
    context |= {
        "filters": filters.values,
        "error": "",
        "rows": result.items,
        "pager": pager(filters.values, filters.page, result.total, len(result.items)),
    }
    return render(request, "audit.html", context)


# -- policies -------------------------------------------------------------------------


def _policies_context(request: Request) -> dict[str, Any]:
    user = signed_in(request)
    return {
        "page_title": "Policies",
        "policy": summarize(console(request).holder.current),
        "can_reload": user.role.allows(Role.ADMIN),
        "reload": None,
        "handover_errors": [],
    }


@require(Role.VIEWER)
async def policies_page(request: Request) -> Response:
    """The rules in force now, the marketplace profiles, and (for admins) the reload button."""
    return render(request, "policies.html", _policies_context(request))


@require(Role.VIEWER)
async def rule_page(request: Request) -> Response:
    """One rule: what it does in each profile, and its hit and pass examples per language."""
    policy = console(request).holder.current
    rule_id = str(request.path_params["rule_id"])
    rule = find_rule(policy, rule_id)
    if rule is None:
        raise HTTPException(404, f"No rule {rule_id!r} is loaded.")
    context = {
        "page_title": f"Rule {rule.id}",
        "rule": rule_row(policy, rule),
        "examples": rule_examples(policy, rule.id),
        "log_url": "/decisions" + query_string({"rule": rule.id}),
    }
    return render(request, "policy_rule.html", context)


def _reload_detail(result: ReloadResult) -> str:
    if not result.ok:
        return f"refused, kept {result.digest[:12]}: " + "; ".join(result.problems)
    if result.changed:
        return f"{result.previous[:12]} -> {result.digest[:12]}, {result.rules} rules"
    return f"unchanged ({result.digest[:12]}, {result.rules} rules)"


@require(Role.ADMIN)
async def reload_policies(request: Request) -> Response:
    """Read the policy files again; swap them in only if they are valid, and show what happened.

    The console's own policy (rule descriptions, rescans) changes here; the
    ``after_reload`` hooks pass the reload on (``gateway serve`` signals its SMTP
    workers). A refused reload keeps the running policy everywhere.
    """
    app = console(request)
    user = signed_in(request)
    form = await request.form()
    reason = str(form.get("reason", ""))
    # Compiling the policy takes seconds of CPU: keep it off the event loop.
    result = await asyncio.to_thread(app.holder.try_reload)
    hooks_failed: list[str] = []
    if result.ok:
        for hook in app.after_reload:
            try:
                hook()
            except Exception as exc:  # the console's reload stands; say the hand-over did not happen
                log.exception("policy_reload_handover_failed", hook=repr(hook))
                hooks_failed.append(f"{exc.__class__.__name__}: {exc}")
    detail = _reload_detail(result)
    if hooks_failed:
        detail += "; not passed on to the SMTP workers: " + "; ".join(hooks_failed)
    await app.service.record(
        user.name,
        "policy_reload",
        target=result.digest[:12],
        reason=reason,
        ok=result.ok and not hooks_failed,
        detail=detail,
    )
    context = _policies_context(request) | {"reload": result, "handover_errors": hooks_failed}
    return render(request, "policies.html", context, status_code=200 if result.ok else 422)


def routes() -> list[BaseRoute]:
    """The log views' routes, mounted by :func:`gateway.web.app.create_app`."""
    return [
        Route("/decisions", decisions_page, methods=["GET"]),
        Route("/dashboard", dashboard_page, methods=["GET"]),
        Route("/audit", audit_page, methods=["GET"]),
        Route("/policies", policies_page, methods=["GET"]),
        Route("/policies/rules/{rule_id}", rule_page, methods=["GET"]),
        Route("/policies/reload", reload_policies, methods=["POST"]),
    ]
