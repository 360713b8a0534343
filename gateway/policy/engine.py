"""The compiled policy: routing by recipient domain and the pure ``evaluate``.

``evaluate(parsed, route, state) -> Verdict`` records every rule that hits as
a :class:`Finding` (rule id, category, action, language, evidence quoted from
the original text, location), then the profile decides: the message takes the
most severe action among findings that are not in monitor mode. It does no I/O
and, given the same inputs and clock, always returns the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.config import RouteConfig
from gateway.mime.types import ParsedMessage
from gateway.model import Action, Finding, Route, Signal, Verdict
from gateway.pipeline_types import PolicyNeeds
from gateway.policy.context import EvalContext, Profile
from gateway.policy.lexicon import COMMON, Term, TermError, TermIndex, compile_term
from gateway.policy.loader import PolicyError, PolicySpecs
from gateway.policy.rules import Hit, Rule, build_rule
from gateway.policy.rules.history import seller_order_ids
from gateway.policy.rules.structure import language_of
from gateway.policy.spec import RuleSpec, StateMatch
from gateway.state import State

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Resolved:
    action: Action
    monitor: bool


def compile_terms(specs: PolicySpecs) -> list[Term]:
    """Compile every lexicon term.

    Raises:
        PolicyError: listing every term that does not compile.
    """
    terms: list[Term] = []
    problems: list[str] = []
    for language, lexicon in sorted(specs.lexicons.items()):
        for concept, sources in lexicon.concepts.items():
            for position, source in enumerate(sources):
                try:
                    terms.append(compile_term(language, concept, source))
                except TermError as exc:
                    problems.append(f"lexicon/{language}: concepts.{concept}.{position} {source!r}: {exc}")
    if problems:
        raise PolicyError(problems)
    return terms


class CompiledPolicy:
    """A loaded policy; immutable once built, swapped whole on reload."""

    def __init__(
        self,
        specs: PolicySpecs,
        routes: Sequence[RouteConfig] = (),
        *,
        monitor: bool = False,
        clock: Clock = utc_now,
    ) -> None:
        self.specs = specs
        self.monitor = monitor
        self.clock = clock
        self.upstreams: dict[str, str] = {}
        extra_domains: dict[str, list[str]] = {}
        problems: list[str] = []
        for position, route in enumerate(routes):
            if route.profile not in specs.profiles:
                problems.append(f"routes[{position}].profile: unknown profile {route.profile!r}")
                continue
            extra_domains.setdefault(route.profile, []).extend(route.domains)
            self.upstreams[route.profile] = route.upstream
        if problems:
            raise PolicyError(problems)
        self.profiles: dict[str, Profile] = {}
        for profile_id, spec in specs.profiles.items():
            if extra_domains.get(profile_id):
                spec = spec.model_copy(update={"relay_domains": [*spec.relay_domains, *extra_domains[profile_id]]})
            self.profiles[profile_id] = Profile(spec)
        self.index = TermIndex(compile_terms(specs))
        self.concepts: dict[str, frozenset[str]] = {
            language: frozenset(lexicon.concepts) for language, lexicon in specs.lexicons.items()
        }
        rules = [build_rule(spec) for spec in specs.rules if spec.enabled]
        self.signal_rules: tuple[Rule, ...] = tuple(r for r in rules if r.spec.signal is not None)
        self.finding_rules: tuple[Rule, ...] = tuple(r for r in rules if r.spec.signal is None)
        # Per profile, the rules that apply and how they act (resolved once, not per message).
        self.active: dict[str, tuple[tuple[Rule, _Resolved], ...]] = {
            profile_id: tuple(
                (rule, resolved)
                for rule in self.finding_rules
                if (resolved := self._resolve(profile, rule.spec)) is not None
            )
            for profile_id, profile in self.profiles.items()
        }
        self._needs = {
            profile_id: self._needs_of(self.profiles[profile_id], active) for profile_id, active in self.active.items()
        }

    # --- routing -------------------------------------------------------

    def profile_for(self, recipient: str) -> Profile:
        """The profile whose relay domains hold ``recipient`` (``default`` otherwise)."""
        domain = recipient.rpartition("@")[2]
        for profile in self.profiles.values():
            if profile.id != "default" and profile.serves(domain):
                return profile
        return self.profiles["default"]

    def route(self, recipients: Sequence[str]) -> Route:
        """The route of a message to ``recipients`` (decided by the first one)."""
        profile = self.profile_for(recipients[0]) if recipients else self.profiles["default"]
        return Route(
            profile=profile.id,
            upstream=self.upstreams.get(profile.id, "default"),
            recipients=tuple(recipients),
            is_marketplace=profile.id != "default",
            max_message_size=profile.spec.max_message_size,
        )

    def _needs_of(self, profile: Profile, active: tuple[tuple[Rule, _Resolved], ...]) -> PolicyNeeds:
        rules = [rule for rule, _ in active] + list(self.signal_rules)
        checks = {rule.spec.match.check for rule, _ in active if isinstance(rule.spec.match, StateMatch)}
        proactive = profile.spec.proactive
        # Only the cap reads per-buyer history, and only over its own period.
        capped = "cap" in checks and proactive.max_per_buyer is not None
        return PolicyNeeds(
            content=bool(rules),
            state=bool(checks),
            buyer_period=timedelta(days=proactive.period_days) if capped else None,
        )

    def needs(self, profile: str) -> PolicyNeeds:
        """What evaluating ``profile``'s active rules reads (content, per-order state, buyer history)."""
        return self._needs.get(profile, PolicyNeeds())

    # --- evaluation ----------------------------------------------------

    def _resolve(self, profile: Profile, rule: RuleSpec) -> _Resolved | None:
        setting = profile.setting(rule.id)
        if setting == "off":
            return None
        action = Action(rule.action) if setting in ("on", "monitor") else Action(setting)
        monitor = self.monitor or profile.spec.monitor or rule.monitor or setting == "monitor"
        return _Resolved(action, monitor)

    @staticmethod
    def _applies(rule: RuleSpec, is_reply: bool) -> bool:
        return rule.scope == "all" or (rule.scope == "reply") == is_reply

    def evaluate(self, parsed: ParsedMessage, route: Route, state: State) -> Verdict:
        """Every rule's findings for ``parsed`` under ``route``'s profile, then the action."""
        profile = self.profiles.get(route.profile, self.profiles["default"])
        ctx = EvalContext(parsed, route, profile, state, self.clock(), self.index)
        if not parsed.is_reply:
            ctx.signals.add(Signal.PROACTIVE)
        for rule in self.signal_rules:
            if self._applies(rule.spec, parsed.is_reply) and rule.check(ctx):
                assert rule.spec.signal is not None
                ctx.signals.add(rule.spec.signal)
        findings: list[Finding] = []
        for rule, resolved in self.active[profile.id]:
            spec = rule.spec
            if not self._applies(spec, parsed.is_reply):
                continue
            hits = rule.check(ctx)
            if hits:
                findings.append(self._finding(ctx, spec, resolved, hits[0]))
        acting = [f.action for f in findings if not f.monitor]
        return Verdict(
            action=Action.most_severe(acting),
            profile=profile.id,
            findings=tuple(findings),
            signals=frozenset(ctx.signals),
            order_ids=tuple(seller_order_ids(ctx)),
            buyer=route.buyer,
        )

    @staticmethod
    def _finding(ctx: EvalContext, spec: RuleSpec, resolved: _Resolved, hit: Hit) -> Finding:
        assert spec.category is not None
        language = hit.language if hit.language not in (None, COMMON) else language_of(ctx)
        return Finding(
            rule=spec.id,
            category=spec.category,
            action=resolved.action,
            description=spec.description,
            evidence=hit.evidence,
            location=hit.location,
            language=language,
            monitor=resolved.monitor,
        )
