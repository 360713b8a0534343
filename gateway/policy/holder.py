"""The running policy, swapped whole on reload (SIGHUP or the admin console).

A reload builds a new :class:`CompiledPolicy` from the files and validates it;
only then does it replace the running one, in one assignment, so a message is
always evaluated by one complete policy. An invalid file leaves the running
policy in place and the log says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.config import Config, RouteConfig
from gateway.policy.engine import CompiledPolicy
from gateway.policy.lint import fatal, lint
from gateway.policy.loader import PolicyError, load_specs

log = structlog.get_logger(__name__)


def build_policy(
    path: Path, local_path: Path | None = None, routes: list[RouteConfig] | None = None, *, monitor: bool = False
) -> CompiledPolicy:
    """Load, compile and check a policy.

    Raises:
        PolicyError: the files are invalid, or a rule refers to an unknown concept
            or a pattern that can backtrack catastrophically.
    """
    policy = CompiledPolicy(load_specs(path, local_path), routes or [], monitor=monitor)
    problems = fatal(lint(policy))
    if problems:
        raise PolicyError([str(p) for p in problems])
    return policy


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did.

    Attributes:
        ok: the new files were valid and are now in force.
        digest: the digest of the policy in force afterwards.
        previous: the digest of the policy in force before.
        rules: how many rules the policy in force has.
        problems: why the files were refused (each names its file and key); empty when ``ok``.
    """

    ok: bool
    digest: str
    previous: str
    rules: int
    problems: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """The files differ from the ones in force before (a reload of unchanged files is still ok)."""
        return self.ok and self.digest != self.previous


class PolicyHolder:
    """Holds the current policy; callable, so it serves as the pipeline's policy provider."""

    def __init__(self, policy: CompiledPolicy, builder: Callable[[], CompiledPolicy]) -> None:
        self._policy = policy
        self._builder = builder
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: Config) -> PolicyHolder:
        """Build the configured policy (raises :class:`PolicyError` when it is invalid)."""

        def builder() -> CompiledPolicy:
            return build_policy(
                config.policy.path, config.policy.local_path, list(config.routes), monitor=config.policy.monitor
            )

        return cls(builder(), builder)

    @property
    def current(self) -> CompiledPolicy:
        """The policy in force now."""
        return self._policy

    def __call__(self) -> CompiledPolicy:
        """The policy in force now (the pipeline's policy provider)."""
        return self._policy

    def reload(self) -> bool:
        """Rebuild from the files; swap only if valid. Returns whether it swapped."""
        return self.try_reload().ok

    def try_reload(self) -> ReloadResult:
        """Rebuild from the files and swap only if valid; say what happened (the console shows it)."""
        with self._lock:
            previous = self._policy.specs.digest
            try:
                policy = self._builder()
            except PolicyError as exc:
                log.error("policy_reload_failed", problems=exc.problems, kept=previous[:12])
                return ReloadResult(False, previous, previous, len(self._policy.specs.rules), tuple(exc.problems))
            except Exception as exc:  # a bug must not take the running policy down with it
                log.exception("policy_reload_failed", error=str(exc), kept=previous[:12])
                problem = f"{exc.__class__.__name__}: {exc}"
                return ReloadResult(False, previous, previous, len(self._policy.specs.rules), (problem,))
            self._policy = policy
        log.info(
            "policy_reloaded", digest=policy.specs.digest[:12], previous=previous[:12], rules=len(policy.specs.rules)
        )
        return ReloadResult(True, policy.specs.digest, previous, len(policy.specs.rules))
