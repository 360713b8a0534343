"""``gateway quarantine`` and ``gateway decisions``: the review service from a shell.

Thin adapters over :class:`~gateway.admin.service.ReviewService` (the only code
that changes quarantine state): parse options, call the service, print a
table or ``--json`` (shapes in :mod:`gateway.admin.render_json`, documented in
docs/quarantine.md). ``gateway users`` lives in :mod:`gateway.admin.cli_users`.

Exit status: 0 when everything asked for was done; 1 when something was not
(unknown id, wrong state, release refused by the next hop...), with one line
per problem on stderr; 2 for a usage error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from gateway.admin import render_json, render_text
from gateway.admin.cli_users import users_group
from gateway.admin.clikit import AdminContext, CommandFailed, admin_command, check_id, emit, json_option, run_service
from gateway.admin.params import AGE, SINCE
from gateway.admin.results import ActionResult, MessageView, RescanResult
from gateway.admin.runtime import ReviewRuntime
from gateway.model import Action
from gateway.store import ConflictError, NotFoundError
from gateway.store.records import (
    AuditEntry,
    AuditQuery,
    DecisionQuery,
    DecisionRecord,
    DecisionStats,
    Page,
    PurgeResult,
    QuarantineQuery,
    QuarantineRecord,
    QuarantineStatus,
)

__all__ = ["decisions_group", "quarantine_group", "users_group"]

#: Audit rows shown as a message's history (a message sees a handful of actions).
HISTORY_LIMIT = 500

_STATUS = click.Choice([s.value for s in QuarantineStatus])
_ACTION = click.Choice([a.value for a in Action])
_LIMIT = click.IntRange(1, 10_000)


def _filters(func: click.decorators.FC) -> click.decorators.FC:
    """The filters ``quarantine list`` and ``decisions list`` share."""
    options = [
        click.option("--rule", metavar="RULE", help="Has a finding of RULE or one of its sub-rules."),
        click.option("--category", metavar="CATEGORY", help="Has a finding in CATEGORY (e.g. review.removal)."),
        click.option("--language", metavar="CODE", help="Has a finding in language CODE (e.g. de)."),
        click.option("--account", metavar="NAME", help="Sent by sending account NAME."),
        click.option("--profile", metavar="NAME", help="Decided under marketplace profile NAME."),
        click.option("--since", type=SINCE, help="At or after TIME (ISO 8601 or an age: 2h, 7d)."),
        click.option("--until", type=SINCE, help="Before TIME (ISO 8601 or an age)."),
        click.option("--search", metavar="TEXT", help="TEXT in the subject, sender or recipients."),
        click.option("--limit", type=_LIMIT, default=50, show_default=True, help="At most N rows."),
        click.option("--offset", type=click.IntRange(0), default=0, help="Skip the first N rows."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group("quarantine")
def quarantine_group() -> None:
    """Review quarantined messages: list, show, release, reject, delete, rescan, purge, export."""


@quarantine_group.command("list")
@admin_command
@json_option
@click.option("--status", type=_STATUS, help="Only messages in this status.")
@_filters
def quarantine_list(
    ctx: AdminContext,
    as_json: bool,
    status: str | None,
    search: str | None,
    **filters: Any,
) -> None:
    """List quarantined messages, newest first."""
    query = QuarantineQuery(
        status=QuarantineStatus(status) if status else None,
        text=search,
        **filters,  # the shared filters of @_filters, named as the query's fields
    )

    async def work(rt: ReviewRuntime) -> Page[QuarantineRecord]:
        return await rt.service.list_messages(query)

    result = run_service(ctx, work)
    emit(as_json, render_json.page(result, render_json.record), render_text.quarantine_list(result))


@quarantine_group.command("show")
@admin_command
@json_option
@click.argument("qid", metavar="ID", callback=check_id)
def quarantine_show(ctx: AdminContext, as_json: bool, qid: str) -> None:
    """Show message ID: envelope, verdict with evidence, attachments, status and history."""

    async def work(rt: ReviewRuntime) -> tuple[MessageView, tuple[AuditEntry, ...]]:
        view = await rt.service.show(qid)
        history = await rt.service.audit_log(AuditQuery(target=qid, limit=HISTORY_LIMIT))
        return view, history.items

    view, history = run_service(ctx, work)
    emit(as_json, render_json.show(view, history), render_text.show(view, history))


def _report(results: Sequence[ActionResult], as_json: bool) -> None:
    """Print each result; exit 1 when any did not take effect."""
    if as_json:
        emit(True, [render_json.action(r) for r in results], "")
    failed = [r for r in results if not r.ok]
    for r in results:
        if not as_json and r.ok:
            click.echo(r.message)
        if not r.ok:
            click.echo(f"gateway: {r.message}", err=True)
    if failed:
        sys.exit(1)


_REASON = click.option("--reason", required=True, help="Why (written to the audit log, shown to other reviewers).")
_IDS = click.argument("qids", metavar="ID...", nargs=-1, required=True, callback=check_id)


@quarantine_group.command("release")
@admin_command
@json_option
@_REASON
@_IDS
def quarantine_release(ctx: AdminContext, as_json: bool, reason: str, qids: tuple[str, ...]) -> None:
    """Relay held message(s) ID to the next hop, byte for byte with the original envelope, once."""

    async def work(rt: ReviewRuntime) -> tuple[ActionResult, ...]:
        rt.load_policy()  # a broken policy set is reported before anything is claimed
        return await rt.service.release_many(qids, user=ctx.user, reason=reason)

    _report(run_service(ctx, work), as_json)


@quarantine_group.command("reject")
@admin_command
@json_option
@_REASON
@click.option("--notify", is_flag=True, help="Tell the original sender it was rejected, and why.")
@_IDS
def quarantine_reject(ctx: AdminContext, as_json: bool, reason: str, notify: bool, qids: tuple[str, ...]) -> None:
    """Reject held message(s) ID; nothing is relayed."""

    async def work(rt: ReviewRuntime) -> tuple[ActionResult, ...]:
        return await rt.service.reject_many(qids, user=ctx.user, reason=reason, notify=notify)

    _report(run_service(ctx, work), as_json)


@quarantine_group.command("delete")
@admin_command
@json_option
@click.option("--reason", default="", help="Why (written to the audit log).")
@_IDS
def quarantine_delete(ctx: AdminContext, as_json: bool, reason: str, qids: tuple[str, ...]) -> None:
    """Delete held message(s) ID: the bytes go, the record and decision stay."""

    async def work(rt: ReviewRuntime) -> list[ActionResult]:
        results = []
        for qid in qids:
            try:
                results.append(await rt.service.delete(qid, user=ctx.user, reason=reason))
            except (NotFoundError, ConflictError) as exc:  # report it and go on with the rest
                status = QuarantineStatus(exc.status) if isinstance(exc, ConflictError) else None
                results.append(ActionResult(qid, "delete", False, status, str(exc), error=str(exc)))
        return results

    _report(run_service(ctx, work), as_json)


@quarantine_group.command("rescan")
@admin_command
@json_option
@click.option("--all", "every", is_flag=True, help="Every held message.")
@click.option("--reason", default="", help="Why (written to the audit log).")
@click.argument("qids", metavar="[ID...]", nargs=-1, callback=check_id)
def quarantine_rescan(ctx: AdminContext, as_json: bool, every: bool, reason: str, qids: tuple[str, ...]) -> None:
    """Evaluate message(s) ID, or --all held ones, with the current policy; nothing is released."""
    if every == bool(qids):
        raise click.UsageError("give message ids or --all, not both")

    async def work(rt: ReviewRuntime) -> tuple[list[RescanResult], list[str]]:
        if every:
            return list(await rt.service.rescan_held(user=ctx.user, reason=reason)), []
        results, errors = [], []
        for qid in qids:
            try:
                results.append(await rt.service.rescan(qid, user=ctx.user, reason=reason))
            except (NotFoundError, ConflictError) as exc:  # report it and go on with the rest
                errors.append(str(exc))
        return results, errors

    results, errors = run_service(ctx, work)
    text = "\n".join(r.message for r in results) or ("no held messages" if every else "")
    if as_json or text:
        emit(as_json, [render_json.rescan(r) for r in results], text)
    for error in errors:
        click.echo(f"gateway: {error}", err=True)
    if errors:
        sys.exit(1)


@quarantine_group.command("purge")
@admin_command
@json_option
@click.option("--older-than", type=AGE, help="Age: 12h, 30d, 8w (default: store.retention_days).")
@click.option("--include-held", is_flag=True, help="Also purge messages nobody has reviewed yet.")
@click.option("--reason", default="", help="Why (written to the audit log).")
def quarantine_purge(
    ctx: AdminContext, as_json: bool, older_than: timedelta | None, include_held: bool, reason: str
) -> None:
    """Remove reviewed messages and decisions older than the retention period."""

    async def work(rt: ReviewRuntime) -> PurgeResult:
        return await rt.service.purge(user=ctx.user, older_than=older_than, include_held=include_held, reason=reason)

    result = run_service(ctx, work)
    text = (
        f"purged {result.quarantined} quarantined messages and {result.decisions} decisions "
        f"from before {render_text.when(result.before)} UTC"
    )
    if result.kept_held:
        text += f"; kept {result.kept_held} held messages nobody has reviewed (--include-held purges them)"
    emit(as_json, render_json.purge(result), text)


@quarantine_group.command("export")
@admin_command
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE instead of stdout."
)
@click.argument("qid", metavar="ID", callback=check_id)
def quarantine_export(ctx: AdminContext, output: Path | None, qid: str) -> None:
    """Write message ID exactly as received (.eml) to stdout or --output FILE."""
    if output is None and sys.stdout.isatty():
        raise click.UsageError("refusing to write a raw message to the terminal: redirect (> file.eml) or use -o FILE")

    async def work(rt: ReviewRuntime) -> bytes:
        return await rt.service.export(qid, user=ctx.user)

    raw = run_service(ctx, work)
    if output is None:
        try:
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # `| head`: the reader left; say so instead of a traceback
            # Python flushes stdout again at exit; point it at /dev/null so that flush is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandFailed("the output pipe was closed before the whole message was written") from None
        return
    try:
        output.write_bytes(raw)
    except OSError as exc:
        raise CommandFailed(f"cannot write {output}: {exc.strerror}") from None


@click.group("decisions")
def decisions_group() -> None:
    """Read the decision log: every message's verdict, and counts over time."""


@decisions_group.command("list")
@admin_command
@json_option
@click.option("--action", type=_ACTION, help="Only decisions with this action.")
@click.option("--outcome", type=click.Choice(["relayed", "quarantined", "rejected", "failed"]), help="What happened.")
@_filters
def decisions_list(
    ctx: AdminContext,
    as_json: bool,
    action: str | None,
    outcome: str | None,
    search: str | None,
    **filters: Any,
) -> None:
    """List decisions, newest first."""
    query = DecisionQuery(
        action=Action(action) if action else None,
        outcome=outcome,
        text=search,
        **filters,  # the shared filters of @_filters, named as the query's fields
    )

    async def work(rt: ReviewRuntime) -> Page[DecisionRecord]:
        return await rt.service.decisions(query)

    result = run_service(ctx, work)
    emit(as_json, render_json.page(result, render_json.decision), render_text.decisions_list(result))


@decisions_group.command("stats")
@admin_command
@json_option
@click.option("--since", type=SINCE, help="From TIME (ISO 8601 or an age: 24h, 7d); default all time.")
@click.option("--until", type=SINCE, help="Before TIME.")
def decisions_stats(ctx: AdminContext, as_json: bool, since: datetime | None, until: datetime | None) -> None:
    """Count decisions by action, outcome, category, language, account, rule and day."""

    async def work(rt: ReviewRuntime) -> DecisionStats:
        return await rt.service.decision_stats(since, until)

    result = run_service(ctx, work)
    emit(as_json, render_json.stats(result), render_text.stats(result))
