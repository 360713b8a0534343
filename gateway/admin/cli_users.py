"""``gateway users``: the admin console's users (add, list, set-role, disable, enable, passwd).

Passwords are asked twice on the terminal (never echoed) or read from one line
of standard input with ``--password-stdin`` (for scripts; never as an
argument, where ``ps`` and the shell history would see it). The rules
(at least 15 characters, NFKC) and the argon2 hashing are the service's.
"""

from __future__ import annotations

import sys

import click

from gateway.admin import render_json, render_text
from gateway.admin.clikit import AdminContext, admin_command, emit, json_option, run_service
from gateway.admin.runtime import ReviewRuntime
from gateway.admin.users import MIN_PASSWORD_LENGTH
from gateway.store.records import Role, User

_ROLE = click.Choice([r.value for r in Role])
_STDIN = click.option(
    "--password-stdin", "from_stdin", is_flag=True, help="Read the password from one line of standard input."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(
        click.prompt(f"Password (at least {MIN_PASSWORD_LENGTH} characters)", hide_input=True, confirmation_prompt=True)
    )


def _describe(user: User) -> str:
    return f"{user.name}: {user.role.value}, {'disabled' if user.disabled else 'enabled'}"


@click.group("users")
def users_group() -> None:
    """Manage the admin console's users and their roles (viewer < reviewer < admin)."""


@users_group.command("add")
@admin_command
@click.option("--role", type=_ROLE, required=True, help="viewer reads; reviewer also acts; admin also manages.")
@_STDIN
@click.argument("name")
def users_add(ctx: AdminContext, role: str, from_stdin: bool, name: str) -> None:
    """Create console user NAME."""
    password = _password(from_stdin)

    async def work(rt: ReviewRuntime) -> User:
        return await rt.service.add_user(name, password, role, actor=ctx.user)

    click.echo(f"added {_describe(run_service(ctx, work))}")


@users_group.command("list")
@admin_command
@json_option
def users_list(ctx: AdminContext, as_json: bool) -> None:
    """List console users."""

    async def work(rt: ReviewRuntime) -> tuple[User, ...]:
        return await rt.service.list_users()

    users = run_service(ctx, work)
    emit(as_json, [render_json.user(u) for u in users], render_text.users_list(users))


@users_group.command("set-role")
@admin_command
@click.argument("name")
@click.argument("role", type=_ROLE)
def users_set_role(ctx: AdminContext, name: str, role: str) -> None:
    """Give user NAME the role ROLE (the last enabled admin keeps admin)."""

    async def work(rt: ReviewRuntime) -> User:
        return await rt.service.set_role(name, role, actor=ctx.user)

    click.echo(f"changed {_describe(run_service(ctx, work))}")


def _set_disabled(ctx: AdminContext, name: str, disabled: bool) -> None:
    async def work(rt: ReviewRuntime) -> User:
        return await rt.service.set_disabled(name, disabled, actor=ctx.user)

    click.echo(f"changed {_describe(run_service(ctx, work))}")


@users_group.command("disable")
@admin_command
@click.argument("name")
def users_disable(ctx: AdminContext, name: str) -> None:
    """Stop user NAME from signing in (the last enabled admin stays enabled)."""
    _set_disabled(ctx, name, True)


@users_group.command("enable")
@admin_command
@click.argument("name")
def users_enable(ctx: AdminContext, name: str) -> None:
    """Let a disabled user NAME sign in again."""
    _set_disabled(ctx, name, False)


@users_group.command("passwd")
@admin_command
@_STDIN
@click.argument("name")
def users_passwd(ctx: AdminContext, from_stdin: bool, name: str) -> None:
    """Set a new password for user NAME."""
    password = _password(from_stdin)

    async def work(rt: ReviewRuntime) -> User:
        return await rt.service.set_password(name, password, actor=ctx.user)

    click.echo(f"password changed for {run_service(ctx, work).name}")
