"""PolicyHolder.try_reload says what a reload did, so the console can show it."""

from __future__ import annotations

import yaml

from gateway.policy.holder import PolicyHolder, build_policy
from tests.unit.policy.conftest import PolicyDir
from tests.unit.policy.test_engine import LEXICONS, REMOVAL


def test_try_reload_reports_the_swap_and_the_problems(policy_dir: PolicyDir) -> None:
    """Unchanged files: ok, not changed; edited: ok and changed; broken: refused with the file named."""
    root = policy_dir([REMOVAL], LEXICONS)
    holder = PolicyHolder(build_policy(root), lambda: build_policy(root))
    same = holder.try_reload()
    assert same.ok
    assert not same.changed
    assert same.rules == 1
    assert same.problems == ()

    rules_file = root / "rules" / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"rules": [{**REMOVAL, "action": "quarantine"}]}), encoding="utf-8")
    edited = holder.try_reload()
    assert edited.ok
    assert edited.changed
    assert edited.previous == same.digest
    assert edited.digest == holder.current.specs.digest

    running = holder.current
    rules_file.write_text("rules: [ {id: broken", encoding="utf-8")
    broken = holder.try_reload()
    assert not broken.ok
    assert not broken.changed
    assert holder.current is running
    assert broken.digest == running.specs.digest
    assert any("rules.yaml" in p and "not valid YAML" in p for p in broken.problems)
    assert holder.reload() is False


def test_try_reload_survives_a_crashing_builder(policy_dir: PolicyDir) -> None:
    """A bug in building is reported as a problem and the running policy stays."""
    root = policy_dir([REMOVAL], LEXICONS)
    policy = build_policy(root)

    def crash() -> object:
        raise RuntimeError("disk on fire")

    holder = PolicyHolder(policy, crash)  # type: ignore[arg-type]
    result = holder.try_reload()
    assert not result.ok
    assert result.problems == ("RuntimeError: disk on fire",)
    assert holder.current is policy
