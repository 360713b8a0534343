"""``gateway check`` and ``gateway policies ...``: the policy from the command line.

``gateway check [--profile ID] [--json] FILE...`` is a stable contract
(POLICY.md): it evaluates stored ``.eml`` files exactly as the SMTP path would,
without sending anything. Exit status 0 when every file passes, 1 when any
would be rejected or quarantined, 2 on a usage error or an unreadable file.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from gateway.config import SHIPPED_POLICIES, Config, ConfigError, ParserConfig, RouteConfig, load_config
from gateway.mime.parse import parse_message
from gateway.mime.types import ParsedMessage
from gateway.model import Action, Route, Verdict
from gateway.policy.engine import CompiledPolicy
from gateway.policy.examples import run_examples
from gateway.policy.lint import lint
from gateway.policy.loader import PolicyError, load_specs
from gateway.state import MemoryState

_EXIT_USAGE = 2


class _Setup:
    """What the policy commands need: the policy and the parser limits."""

    def __init__(self, config_path: Path | None, policies: Path | None, local: Path | None) -> None:
        config: Config | None = None
        if config_path is not None:
            try:
                config = load_config(config_path)
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
        self.path = policies or (config.policy.path if config else SHIPPED_POLICIES)
        self.local = local or (config.policy.local_path if config else None)
        self.routes: list[RouteConfig] = list(config.routes) if config else []
        self.monitor = config.policy.monitor if config else False
        # Inline parsing: a command-line run has no event loop to protect.
        self.limits = (config.parser if config else ParserConfig()).model_copy(update={"pool_workers": 0})

    def policy(self) -> CompiledPolicy:
        try:
            return CompiledPolicy(load_specs(self.path, self.local), self.routes, monitor=self.monitor)
        except PolicyError as exc:
            click.echo(str(exc), err=True)
            sys.exit(_EXIT_USAGE)

    def parse(self, raw: bytes) -> ParsedMessage:
        return parse_message(raw, self.limits)


_config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Gateway configuration file."
)
_policies_option = click.option(
    "--policies", type=click.Path(path_type=Path, file_okay=False), help="Policy directory (default: shipped)."
)
_local_option = click.option(
    "--local", type=click.Path(path_type=Path, file_okay=False), help="Local override directory merged over it."
)


def _verdict_json(name: str, verdict: Verdict) -> str:
    findings = [
        {
            "rule": f.rule,
            "category": f.category.value,
            "action": f.action.value,
            "language": f.language,
            "evidence": f.evidence,
            "location": f.location,
            **({"monitor": True} if f.monitor else {}),
        }
        for f in verdict.findings
    ]
    return json.dumps(
        {"file": name, "action": verdict.action.value, "profile": verdict.profile, "findings": findings},
        ensure_ascii=False,
    )


def _verdict_text(name: str, verdict: Verdict) -> str:
    lines = [f"{name}: {verdict.action.value.upper()} (profile {verdict.profile})"]
    for f in verdict.findings:
        mode = " [monitor]" if f.monitor else ""
        language = f" ({f.language})" if f.language else ""
        lines.append(f"  {f.action.value:<10} [{f.rule}]{language}{mode} {f.description}")
        if f.evidence:
            lines.append(f'             "{f.evidence}" in {f.location}')
    return "\n".join(lines)


@click.command("check")
@click.option("--profile", help="Evaluate under this marketplace profile instead of the recipients' one.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, one per line.")
@_config_option
@_policies_option
@_local_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(
    profile: str | None,
    as_json: bool,
    config_path: Path | None,
    policies: Path | None,
    local: Path | None,
    files: tuple[Path, ...],
) -> None:
    """Evaluate stored messages (.eml) exactly as the SMTP path would, without sending.

    Exit status: 0 every file passes, 1 any would be rejected or quarantined,
    2 a usage error or an unreadable file.
    """
    setup = _Setup(config_path, policies, local)
    policy = setup.policy()
    if profile is not None and profile not in policy.profiles:
        raise click.UsageError(f"unknown profile {profile!r} (known: {', '.join(sorted(policy.profiles))})")
    status = 0
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            click.echo(f"gateway check: {file}: cannot read: {exc.strerror}", err=True)
            status = _EXIT_USAGE
            continue
        parsed = setup.parse(raw)
        route = policy.route(list(parsed.to_addrs))
        if profile is not None:
            chosen = policy.profiles[profile]
            route = Route(profile, route.upstream, route.recipients, profile != "default", chosen.spec.max_message_size)
        verdict = policy.evaluate(parsed, route, MemoryState())
        click.echo(_verdict_json(str(file), verdict) if as_json else _verdict_text(str(file), verdict))
        if verdict.action is not Action.PASS and status == 0:
            status = 1
    sys.exit(status)


@click.group("policies")
def policies_group() -> None:
    """Test, lint and list the marketplace policies."""


@policies_group.command("test")
@click.option("--rule", help="Only this rule id (and its sub-rules).")
@click.option("--language", help="Only this language's examples (plus language-independent ones).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per example.")
@click.option("-v", "--verbose", is_flag=True, help="List every example, not only failures.")
@_config_option
@_policies_option
@_local_option
def policies_test(
    rule: str | None,
    language: str | None,
    as_json: bool,
    verbose: bool,
    config_path: Path | None,
    policies: Path | None,
    local: Path | None,
) -> None:
    """Run every rule's hit and pass examples; exit 1 if any gives the wrong outcome."""
    setup = _Setup(config_path, policies, local)
    results = run_examples(setup.policy(), setup.parse, rule_filter=rule, language_filter=language)
    failed = [r for r in results if not r.ok]
    for result in results if (verbose or as_json) else failed:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "rule": result.rule,
                        "language": result.language,
                        "expect": result.expect,
                        "ok": result.ok,
                        "text": result.text,
                        "detail": result.detail,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            mark = "ok  " if result.ok else "FAIL"
            click.echo(f"{mark} {result.rule} [{result.language}] {result.expect}: {result.text[:100]!r}")
            if not result.ok:
                click.echo(f"       {result.detail}")
    if not as_json:
        per_language = Counter(r.language for r in results)
        failed_language = Counter(r.language for r in failed)
        summary = ", ".join(
            f"{lang} {per_language[lang] - failed_language[lang]}/{per_language[lang]}" for lang in sorted(per_language)
        )
        click.echo(f"{len(results) - len(failed)}/{len(results)} examples give the expected outcome ({summary})")
    sys.exit(1 if failed else 0)


@policies_group.command("lint")
@_config_option
@_policies_option
@_local_option
def policies_lint(config_path: Path | None, policies: Path | None, local: Path | None) -> None:
    """Validate the policy files: references, examples per language, pattern safety."""
    setup = _Setup(config_path, policies, local)
    problems = lint(setup.policy())
    for problem in problems:
        click.echo(str(problem), err=problem.level == "error")
    errors = sum(1 for p in problems if p.level == "error")
    warnings = len(problems) - errors
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors else 0)


@policies_group.command("list")
@click.option("--profile", help="Show the setting of each rule in this profile.")
@_config_option
@_policies_option
@_local_option
def policies_list(profile: str | None, config_path: Path | None, policies: Path | None, local: Path | None) -> None:
    """List the loaded rules with their category, action and description."""
    setup = _Setup(config_path, policies, local)
    policy = setup.policy()
    if profile is not None and profile not in policy.profiles:
        raise click.UsageError(f"unknown profile {profile!r}")
    for spec in policy.specs.rules:
        kind = spec.category.value if spec.category else f"signal:{spec.signal.value if spec.signal else ''}"
        setting = policy.profiles[profile].setting(spec.id) if profile else spec.action
        click.echo(f"{spec.id:<32} {kind:<22} {setting:<11} {spec.description}")
