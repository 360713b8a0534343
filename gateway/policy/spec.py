"""The shape of the policy files, validated with pydantic so errors name the key.

``policies/`` holds three kinds of YAML file (see ``docs/policies.md``):

- ``marketplaces/<id>.yaml``: a :class:`ProfileSpec` per marketplace;
- ``rules/*.yaml``: ``rules:`` lists of :class:`RuleSpec`;
- ``lexicon/<lang>.yaml``: a :class:`LexiconSpec` (concepts and examples).

These are plain data; :mod:`gateway.policy.loader` turns them into the
compiled, immutable policy the engine runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.model import Category, Signal

RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")]
Concept = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Language = Annotated[str, Field(pattern=r"^([a-z]{2}|\*)$")]
#: The 13 languages every rule must work in (POLICY.md).
LANGUAGES = ("en", "de", "fr", "it", "es", "pl", "nl", "sv", "pt", "tr", "ru", "uk", "be")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- examples --------------------------------------------------------------


class AttachmentExample(_Spec):
    """An attachment inside an example message."""

    filename: str
    content_type: str = "application/octet-stream"
    text: str | None = None  # content as text (UTF-8)
    base64: str | None = None  # or as base64
    size: int | None = None  # or that many filler bytes

    @model_validator(mode="after")
    def _one_content(self) -> AttachmentExample:
        given = sum(x is not None for x in (self.text, self.base64, self.size))
        if given != 1:
            raise ValueError("give exactly one of text, base64 or size")
        return self


class HistoryEvent(_Spec):
    """A past event an example assumes (for the stateful rules)."""

    event: Literal["review_request", "proactive", "order_seen"]
    key: str  # an order id, or "buyer" for the example's recipient
    days_ago: Annotated[int, Field(ge=0)] = 1


class MessageExample(_Spec):
    """An example written as a whole message rather than one sentence."""

    body: str = ""
    html: str | None = None
    subject: str | None = None
    quote: str | None = None  # the buyer's message, quoted after the body
    kind: Literal["reply", "proactive"] = "reply"
    profile: str | None = None
    attachments: list[AttachmentExample] = []
    headers: dict[str, str] = {}
    history: list[HistoryEvent] = []
    note: str = ""


Example = str | MessageExample


class ExampleSet(_Spec):
    """``hit`` examples must trigger the rule; ``pass`` examples must pass entirely."""

    hit: list[Example] = []
    pass_: list[Example] = Field(default=[], alias="pass")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- rules -----------------------------------------------------------------


class Nearby(_Spec):
    """Concepts within ``within`` tokens (same sentence) that cancel a match."""

    concepts: list[Concept]
    within: Annotated[int, Field(ge=1, le=30)] = 4


class Group(_Spec):
    """One thing a co-occurrence needs: any of ``any`` concepts, minus its exceptions.

    ``requires_before`` keeps only spans preceded (within its window, same
    sentence) by one of its concepts: "don't *leave*" needs the negation.
    """

    any: Annotated[list[Concept], Field(min_length=1)]
    unless_before: list[Nearby] = []
    unless_after: list[Nearby] = []
    requires_before: Nearby | None = None

    @field_validator("unless_before", "unless_after", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """Accept ``"review"`` and ``["you", "ask"]`` as shorthands."""
        if isinstance(value, str):
            return {"any": [value]}
        if isinstance(value, list):
            return {"any": value}
        return value


TextKind = Literal["subject", "body", "attachment", "attachment-name"]


class CooccurMatch(_Spec):
    """Every group found within ``window`` tokens, in one sentence unless ``sentence`` is off.

    ``window`` bounds the distance between the first tokens of the groups' spans.
    """

    type: Literal["cooccur"]
    groups: Annotated[list[Group], Field(min_length=1, max_length=5)]
    window: Annotated[int, Field(ge=0, le=60)] = 12
    sentence: bool = True
    unless: list[Concept] = []  # any of these in the same sentence cancels the match
    texts: list[TextKind] = ["subject", "body", "attachment"]

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        return [Group.coerce(v) for v in value] if isinstance(value, list) else value


class LinkMatch(_Spec):
    """Links in the seller's text: off the profile's allowlist, plain http, or shortened."""

    type: Literal["links"]
    check: Literal["domain", "insecure", "shortener"]
    shorteners: list[str] = []


class ContactMatch(_Spec):
    """Contact details in the seller's text, unless a nearby concept excuses them."""

    type: Literal["contacts"]
    kinds: Annotated[list[Literal["email", "phone", "messenger"]], Field(min_length=1)]
    excused_by: list[Concept] = []  # e.g. a manufacturer's warranty line, a carrier
    excuse_window: Annotated[int, Field(ge=1, le=40)] = 12


class AttachmentMatch(_Spec):
    """Attachments of a type, size or nature the profile does not permit."""

    type: Literal["attachments"]
    check: Literal["type", "size", "lying", "active", "encrypted"]


class TrackingMatch(_Spec):
    """Remote images, 1x1 pixels, unsubscribe links or headers."""

    type: Literal["tracking"]
    check: Literal["remote_image", "pixel", "unsubscribe"]
    unsubscribe: list[Concept] = []


class RedundantMatch(_Spec):
    """A proactive message that only notifies or thanks (``notice``) and has no other purpose."""

    type: Literal["redundant"]
    notice: Annotated[list[Concept], Field(min_length=1)]
    purpose: list[Concept] = []


class StateMatch(_Spec):
    """Per-order/per-buyer history: a repeated review request, the proactive window, a cap."""

    type: Literal["state"]
    check: Literal["repeat", "window", "cap"]


class UnscannableMatch(_Spec):
    """Content the parser could not inspect."""

    type: Literal["unscannable"]


class OrderLeakMatch(_Spec):
    """Marketplace order ids in mail to a recipient outside every marketplace relay."""

    type: Literal["order_leak"]


Match = Annotated[
    CooccurMatch
    | LinkMatch
    | ContactMatch
    | AttachmentMatch
    | TrackingMatch
    | RedundantMatch
    | StateMatch
    | UnscannableMatch
    | OrderLeakMatch,
    Field(discriminator="type"),
]

RuleAction = Literal["reject", "quarantine"]


class RuleSpec(_Spec):
    """One rule: what it matches, what it asks for, and its own examples.

    A rule with ``signal`` set records a fact for per-order state (a neutral
    review request) instead of a finding; it has no category or action.
    """

    id: RuleId
    description: Annotated[str, Field(min_length=10, max_length=200)]
    category: Category | None = None
    action: RuleAction = "reject"
    # Log the finding without acting (M365's "Audit"): try a new rule safely.
    monitor: bool = False
    signal: Signal | None = None
    scope: Literal["all", "reply", "proactive"] = "all"
    enabled: bool = True
    match: Match
    # Language-independent examples (links, attachments...); language examples
    # live in the lexicon files next to the words they exercise.
    examples: ExampleSet | None = None

    @model_validator(mode="after")
    def _kind(self) -> RuleSpec:
        if (self.signal is None) == (self.category is None):
            raise ValueError("a rule has either a category (a finding) or a signal, not both")
        return self


class RulesFile(_Spec):
    """A ``rules/*.yaml`` file."""

    rules: list[RuleSpec]


# --- profiles --------------------------------------------------------------


class LinkPolicy(_Spec):
    """Which link targets a marketplace tolerates."""

    allowed_domains: list[str] = []  # host globs: "amazon.*", "*.amazon.*"
    https_only: bool = True


class AttachmentPolicy(_Spec):
    """Which attachments a marketplace tolerates."""

    allowed_types: list[str] = []  # detected MIME types; empty: anything
    allowed_extensions: list[str] = []
    max_size: int | None = None


class ProactivePolicy(_Spec):
    """Limits on messages the seller starts."""

    window_days: int | None = None  # days after the order; None: no window
    max_per_buyer: int | None = None  # per ``period_days``; None: no cap
    period_days: Annotated[int, Field(ge=1)] = 30


class ContactPolicy(_Spec):
    """Contact details a marketplace tolerates in the seller's text."""

    allowed_email_domains: list[str] = []  # e.g. the marketplace's own relay domains


RuleSetting = Literal["on", "off", "reject", "quarantine", "monitor"]


class ProfileSpec(_Spec):
    """A marketplace profile (``marketplaces/<id>.yaml``)."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    name: str
    description: str = ""
    relay_domains: list[str] = []  # recipient domain globs
    max_message_size: int | None = None
    links: LinkPolicy = LinkPolicy()
    attachments: AttachmentPolicy = AttachmentPolicy()
    proactive: ProactivePolicy = ProactivePolicy()
    contacts: ContactPolicy = ContactPolicy()
    # Rule id globs -> setting; later entries win ("*": on first, then specifics).
    rules: dict[str, RuleSetting] = {"*": "on"}
    monitor: bool = False


# --- lexicons --------------------------------------------------------------


class LexiconSpec(_Spec):
    """A ``lexicon/<lang>.yaml`` file: concepts as terms, and examples per rule."""

    language: Language
    name: str
    concepts: dict[Concept, list[str]] = {}
    examples: dict[RuleId, ExampleSet] = {}
