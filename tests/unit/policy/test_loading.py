"""Loading, local overrides, lint and hot reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from gateway.policy.engine import CompiledPolicy
from gateway.policy.holder import PolicyHolder, build_policy
from gateway.policy.lint import lint
from gateway.policy.loader import PolicyError, load_specs
from tests.unit.policy.conftest import PolicyDir
from tests.unit.policy.test_engine import LEXICONS, REMOVAL


def test_errors_name_file_and_key(policy_dir: PolicyDir) -> None:
    """A bad rule is reported with its file, position and key; all problems at once."""
    bad = {**REMOVAL, "action": "explode", "bogus": 1}
    root = policy_dir([bad], LEXICONS)
    with pytest.raises(PolicyError) as info:
        load_specs(root)
    text = "\n".join(info.value.problems)
    assert "rules.yaml: rules.0: action" in text
    assert "bogus: unknown key" in text


def test_duplicate_rule_ids_are_refused(policy_dir: PolicyDir) -> None:
    """Two shipped rules with one id are an error."""
    root = policy_dir([REMOVAL, REMOVAL], LEXICONS)
    with pytest.raises(PolicyError, match=r"duplicate rule id 'review\.removal'"):
        load_specs(root)


def test_yaml_words_are_not_booleans(policy_dir: PolicyDir) -> None:
    """`no`, `on`, `off` in a lexicon stay words (YAML 1.2 booleans)."""
    root = policy_dir([REMOVAL], LEXICONS)
    (root / "lexicon" / "es.yaml").write_text(
        "language: es\nname: es\nconcepts:\n  negation: [no, nunca]\n  review: [reseña]\n"
        "  change: [borre]\n  ask: [por favor]\n",
        encoding="utf-8",
    )
    specs = load_specs(root)
    assert specs.lexicons["es"].concepts["negation"] == ["no", "nunca"]


def test_local_overrides_merge_over_shipped(policy_dir: PolicyDir, tmp_path: Path) -> None:
    """Local files soften a rule, add terms and change a profile without touching shipped files."""
    root = policy_dir([REMOVAL], LEXICONS)
    local = tmp_path / "local"
    (local / "rules").mkdir(parents=True)
    (local / "lexicon").mkdir()
    (local / "marketplaces").mkdir()
    (local / "rules" / "site.yaml").write_text(
        yaml.safe_dump({"rules": [{"id": "review.removal", "action": "quarantine"}]}), encoding="utf-8"
    )
    (local / "lexicon" / "en.yaml").write_text(
        yaml.safe_dump({"language": "en", "concepts": {"change": ["erase"]}}), encoding="utf-8"
    )
    (local / "marketplaces" / "amazon.yaml").write_text(
        yaml.safe_dump({"id": "amazon", "max_message_size": 5}), encoding="utf-8"
    )
    specs = load_specs(root, local)
    (rule,) = specs.rules
    assert rule.action == "quarantine"
    assert rule.description == REMOVAL["description"]
    assert specs.lexicons["en"].concepts["change"] == ["remove", "delete", "erase"]
    assert specs.profiles["amazon"].max_message_size == 5
    assert specs.profiles["amazon"].relay_domains == ["marketplace.amazon.*"]


def test_lint_finds_unknown_concepts_missing_examples_and_dangerous_patterns(policy_dir: PolicyDir) -> None:
    """Lint reports unknown concepts, languages without examples and catastrophic patterns."""
    rule = {**REMOVAL, "match": {**REMOVAL["match"], "unless": ["nowhere"]}}
    lexicons: dict[str, dict[str, Any]] = {
        **LEXICONS,
        "*": {"concepts": {"stars": ["re:(a+)+$"]}},
    }
    policy = CompiledPolicy(load_specs(policy_dir([rule], lexicons)))
    messages = [str(p) for p in lint(policy)]
    assert any("unknown concept 'nowhere'" in m for m in messages)
    assert any("rule review.removal needs 3 hit and 3 pass examples" in m for m in messages)
    assert any("nested quantifiers" in m for m in messages)
    assert any("lexicon/fr.yaml: missing" in m for m in messages)


def test_dangerous_pattern_refused_at_build(policy_dir: PolicyDir) -> None:
    """A policy with a catastrophic pattern is not served."""
    lexicons: dict[str, dict[str, Any]] = {**LEXICONS, "*": {"concepts": {"stars": ["re:(\\w+\\s?)*$"]}}}
    with pytest.raises(PolicyError, match="backtrack"):
        build_policy(policy_dir([REMOVAL], lexicons))


def test_reload_swaps_only_a_valid_policy(policy_dir: PolicyDir) -> None:
    """A valid edit is swapped in; an invalid one keeps the running policy and logs why."""
    root = policy_dir([REMOVAL], LEXICONS)
    holder = PolicyHolder(build_policy(root), lambda: build_policy(root))
    first = holder.current
    rules_file = root / "rules" / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"rules": [{**REMOVAL, "action": "quarantine"}]}), encoding="utf-8")
    assert holder.reload()
    assert holder.current is not first
    assert holder.current.specs.rules[0].action == "quarantine"
    good = holder.current
    rules_file.write_text("rules: [ {id: broken", encoding="utf-8")
    with capture_logs() as logs:
        assert not holder.reload()
    assert holder.current is good
    assert logs[0]["event"] == "policy_reload_failed"
    assert any("not valid YAML" in p for p in logs[0]["problems"])
