"""Small policy directories built in the test, and a parser for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import ParserConfig
from gateway.mime.parse import parse_message
from gateway.mime.types import ParsedMessage

PolicyDir = Callable[..., Path]

DEFAULT_PROFILE: dict[str, Any] = {"id": "default", "name": "Other", "rules": {"*": "off"}}
AMAZON_PROFILE: dict[str, Any] = {
    "id": "amazon",
    "name": "Amazon",
    "relay_domains": ["marketplace.amazon.*"],
    "links": {"allowed_domains": ["amazon.*", "*.amazon.*"]},
    "rules": {"*": "on"},
}


def write_policy(
    root: Path,
    rules: list[dict[str, Any]],
    lexicons: dict[str, dict[str, Any]],
    profiles: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a policy directory with these rules, lexicons (language -> body) and profiles."""
    for sub in ("marketplaces", "rules", "lexicon"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for profile in profiles or [DEFAULT_PROFILE, AMAZON_PROFILE]:
        (root / "marketplaces" / f"{profile['id']}.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    (root / "rules" / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8")
    for language, body in lexicons.items():
        name = "common" if language == "*" else language
        data = {"language": language, "name": name, **body}
        (root / "lexicon" / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture
def policy_dir(tmp_path: Path) -> PolicyDir:
    """Build a policy directory under tmp_path."""

    def build(rules: list[dict[str, Any]], lexicons: dict[str, dict[str, Any]], **kwargs: Any) -> Path:
        return write_policy(tmp_path / "policies", rules, lexicons, **kwargs)

    return build


@pytest.fixture
def parse() -> Callable[[bytes], ParsedMessage]:
    """The real parser, inline."""
    limits = ParserConfig(pool_workers=0)
    return lambda raw: parse_message(raw, limits)
