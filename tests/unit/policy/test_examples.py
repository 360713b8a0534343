"""The shipped policies' own examples, run through the real parser and engine."""

from __future__ import annotations

from gateway.config import SHIPPED_POLICIES, ParserConfig
from gateway.mime.parse import parse_message
from gateway.policy.engine import CompiledPolicy
from gateway.policy.examples import run_examples
from gateway.policy.lint import lint
from gateway.policy.loader import load_specs


def test_every_example_gives_its_expected_outcome() -> None:
    """Every hit example hits its rule in its language and every pass example passes entirely."""
    policy = CompiledPolicy(load_specs(SHIPPED_POLICIES))
    limits = ParserConfig(pool_workers=0)
    results = run_examples(policy, lambda raw: parse_message(raw, limits))
    assert len(results) > 200
    failures = [f"{r.rule} [{r.language}] {r.expect}: {r.text!r}: {r.detail}" for r in results if not r.ok]
    assert failures == []


def test_shipped_policy_is_lint_clean() -> None:
    """Every shipped rule has hit and pass examples in every language it claims; no lint error."""
    policy = CompiledPolicy(load_specs(SHIPPED_POLICIES))
    errors = [str(p) for p in lint(policy) if p.level == "error"]
    assert errors == []
