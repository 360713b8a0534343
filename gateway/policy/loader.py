"""Read ``policies/`` (and a local override directory) into validated specs.

The local directory mirrors the shipped layout and is merged over it, like
rspamd's ``local.d``, so a site never edits shipped files:

- ``marketplaces/<id>.yaml``: merged key by key over the shipped profile
  (mappings merge, lists and scalars replace); a new id adds a profile;
- ``rules/*.yaml``: a rule with a shipped id is merged over it (``enabled:
  false`` turns it off); a new id adds a rule;
- ``lexicon/<lang>.yaml``: terms are appended to the shipped concepts and
  examples to the shipped examples.

Every problem is collected and reported together, each naming its file and key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gateway.policy.spec import LexiconSpec, ProfileSpec, RuleSpec


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false.

    YAML 1.1 reads ``no``, ``yes``, ``on``, ``off``, ``y`` and ``n`` as booleans;
    in a lexicon ``no`` is the Spanish, Italian and English negation and must stay
    a word.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_yaml(raw: bytes | str) -> Any:
    """Parse policy YAML (YAML 1.2 booleans, safe types only)."""
    return yaml.load(raw, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)


class PolicyError(Exception):
    """The policy files are invalid; ``problems`` lists every one, naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid policy:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PolicySpecs:
    """Everything read from the policy directories, validated but not compiled."""

    profiles: dict[str, ProfileSpec]
    rules: tuple[RuleSpec, ...]
    lexicons: dict[str, LexiconSpec]
    digest: str  # SHA-256 over every file read, to tell versions apart
    sources: tuple[str, ...]


def _describe(error: ValidationError) -> list[str]:
    out = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        out.append(f"{key}: {message}")
    return out


def _read_yaml(path: Path, problems: list[str], digest: Any) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror}")
        return None
    digest.update(str(path.name).encode() + b"\0" + raw)
    try:
        return parse_yaml(raw)
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
        return None


def _files(root: Path | None, sub: str) -> Iterator[Path]:
    if root is None:
        return iter(())
    folder = root / sub
    if not folder.is_dir():
        return iter(())
    return iter(sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))


def _merge(base: Any, over: Any) -> Any:
    """Mappings merge recursively; anything else in ``over`` replaces ``base``."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return over


def _merge_lexicon(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    concepts = dict(base.get("concepts") or {})
    for concept, terms in (over.get("concepts") or {}).items():
        concepts[concept] = list(concepts.get(concept) or []) + [
            t for t in terms or [] if t not in (concepts.get(concept) or [])
        ]
    merged["concepts"] = concepts
    examples = dict(base.get("examples") or {})
    for rule_id, sets in (over.get("examples") or {}).items():
        current = dict(examples.get(rule_id) or {})
        for kind in ("hit", "pass"):
            current[kind] = list(current.get(kind) or []) + list((sets or {}).get(kind) or [])
        examples[rule_id] = current
    merged["examples"] = examples
    for key in ("language", "name"):
        if key in over:
            merged[key] = over[key]
    return merged


def _collect(
    file: Path,
    key_field: str,
    merge: Callable[[Any, Any], Any],
    into: dict[str, tuple[dict[str, Any], str]],
    problems: list[str],
    digest: Any,
) -> None:
    """Read one mapping file (a profile or a lexicon) into ``into`` under its key.

    The key is ``key_field`` or the file's stem; a file whose key is already there
    (a local override of a shipped file) is merged over it with ``merge``.
    """
    data = _read_yaml(file, problems, digest)
    if not isinstance(data, dict):
        if data is not None:
            problems.append(f"{file}: expected a mapping")
        return
    key = str(data.get(key_field, file.stem))
    if key in into:
        data = merge(into[key][0], data)
    into[key] = (data, str(file))


def _validate(model: type[BaseModel], data: Any, where: str, problems: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(f"{where}: {line}" for line in _describe(exc))
        return None


def load_specs(path: Path, local_path: Path | None = None) -> PolicySpecs:
    """Read and validate the policy files under ``path``, with ``local_path`` merged over.

    Raises:
        PolicyError: listing every invalid file and key.
    """
    problems: list[str] = []
    digest = hashlib.sha256()
    sources: list[str] = []
    if not path.is_dir():
        raise PolicyError([f"{path}: not a directory"])
    if local_path is not None and not local_path.is_dir():
        raise PolicyError([f"{local_path}: local policy directory does not exist"])

    # Profiles: raw dicts by id, local merged over shipped.
    raw_profiles: dict[str, tuple[dict[str, Any], str]] = {}
    raw_rules: dict[str, tuple[dict[str, Any], str]] = {}
    raw_lexicons: dict[str, tuple[dict[str, Any], str]] = {}
    for root in (path, local_path):
        for file in _files(root, "marketplaces"):
            sources.append(str(file))
            _collect(file, "id", _merge, raw_profiles, problems, digest)
        for file in _files(root, "rules"):
            sources.append(str(file))
            data = _read_yaml(file, problems, digest)
            if data is None:
                continue
            rules = data.get("rules") if isinstance(data, dict) else None
            if not isinstance(rules, list) or set(data) != {"rules"}:
                problems.append(f"{file}: expected a mapping with one key, rules: [...]")
                continue
            for i, rule in enumerate(rules):
                if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
                    problems.append(f"{file}: rules.{i}: a rule needs an id")
                    continue
                rule_id = rule["id"]
                if rule_id in raw_rules:
                    if root is path:
                        problems.append(
                            f"{file}: rules.{i}: duplicate rule id {rule_id!r} (also in {raw_rules[rule_id][1]})"
                        )
                        continue
                    rule = _merge(raw_rules[rule_id][0], rule)
                raw_rules[rule_id] = (rule, f"{file}: rules.{i}")
        for file in _files(root, "lexicon"):
            sources.append(str(file))
            _collect(file, "language", _merge_lexicon, raw_lexicons, problems, digest)

    profiles: dict[str, ProfileSpec] = {}
    for data, where in raw_profiles.values():
        spec = _validate(ProfileSpec, data, where, problems)
        if spec is not None:
            profiles[spec.id] = spec
    rule_specs: list[RuleSpec] = []
    for data, where in raw_rules.values():
        spec = _validate(RuleSpec, data, where, problems)
        if spec is not None:
            rule_specs.append(spec)
    lexicons: dict[str, LexiconSpec] = {}
    for data, where in raw_lexicons.values():
        spec = _validate(LexiconSpec, data, where, problems)
        if spec is not None:
            lexicons[spec.language] = spec
    if "default" not in profiles:
        problems.append(f"{path}/marketplaces: the default profile (default.yaml) is required")
    if problems:
        raise PolicyError(problems)
    return PolicySpecs(profiles, tuple(rule_specs), lexicons, digest.hexdigest(), tuple(sources))
