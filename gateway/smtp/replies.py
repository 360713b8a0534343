"""Every SMTP reply the gateway itself composes, in one place.

The sender's contract (DESIGN.md "Reply semantics") lives here as data:
``250`` only after relay or quarantine commit, ``550 5.7.1`` with the rule id on
reject, ``451`` on anything internal, an upstream ``5xx`` passed back. Other
modules never format a reply string; they call a constructor below and get a
:class:`Reply`.

Replies are single lines of US-ASCII (RFC 5321 4.2 and 4.5.3.1.5: at most 512
octets including CRLF), so text quoted from a message (rule evidence, upstream
replies) is folded to ASCII and truncated.

:func:`with_enhanced_code` adds RFC 3463 enhanced status codes to aiosmtpd's
built-in replies, which lack them, so that ``ENHANCEDSTATUSCODES`` (RFC 2034)
can be advertised truthfully.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gateway.model import Finding
from gateway.pipeline_types import RelayError

#: RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF.
MAX_REPLY_LINE = 510

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: ``code``, RFC 3463 ``status`` (``"5.7.1"``) and human ``text``."""

    code: int
    status: str
    text: str

    def __str__(self) -> str:
        line = f"{self.code} {self.status} {self.text}" if self.status else f"{self.code} {self.text}"
        return line[:MAX_REPLY_LINE]

    @property
    def accepted(self) -> bool:
        """A 2xx reply: the message is the gateway's responsibility now."""
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        """A 4xx reply: the sender keeps the message and retries."""
        return 400 <= self.code < 500


# Cyrillic has no Unicode decomposition to Latin; a small transliteration keeps
# Russian, Ukrainian and Belarusian evidence readable in an ASCII reply.
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяієїґў",
        "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch ' y ' e yu ya i ye yi g u".split(),  # noqa: SIM905
        strict=True,
    )
)
_SPECIAL = {"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "đ": "d", "ı": "i"}
_QUOTES = {"„": '"', "“": '"', "”": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'", "–": "-", "—": "-"}


def ascii_fold(text: str) -> str:
    """Fold ``text`` to printable US-ASCII: strip accents, transliterate Cyrillic, ``?`` for the rest.

    Control characters (CR, LF, NUL, TAB) become spaces: a reply line must not
    break, and a quoted piece of a message must not inject a second reply.
    """
    out: list[str] = []
    for char in text:
        if " " <= char <= "~":
            out.append(char)
            continue
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
            continue
        if char in _QUOTES:
            out.append(_QUOTES[char])
            continue
        lower = char.lower()
        if lower in _CYRILLIC:
            latin = _CYRILLIC[lower]
            out.append(latin.capitalize() if char != lower else latin)
            continue
        if unicodedata.category(char)[0] in "CZ":
            out.append(" ")
            continue
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        out.append(base if base and base.isprintable() else "?")
    return re.sub(r" {2,}", " ", "".join(out))


def _clip(text: str, room: int) -> str:
    text = ascii_fold(text)
    if len(text) <= room:
        return text
    return text[: max(room - 3, 0)].rstrip() + "..."


def _fit(code: int, status: str, head: str, tail: str = "") -> Reply:
    """A reply whose ``head`` is kept whole and ``tail`` truncated to fit one line."""
    head = ascii_fold(head).strip(" ") if not tail else ascii_fold(head)
    room = MAX_REPLY_LINE - len(f"{code} {status} ") - len(head)
    return Reply(code, status, head + _clip(tail, room) if tail else head)


# --- the message's fate (end of DATA) ---------------------------------------------


def relayed(queue_id: str, upstream_reply: str) -> Reply:
    """250: the upstream accepted the message; its own reply is quoted for tracing."""
    return _fit(250, "2.0.0", f"Ok: queued as {queue_id}", f" (next hop: {upstream_reply})" if upstream_reply else "")


def held(queue_id: str) -> Reply:
    """250: the message and its verdict are committed to the quarantine."""
    return Reply(250, "2.0.0", f"Ok: queued as {queue_id}, held for review")


def rejected(finding: Finding | None) -> Reply:
    """550 5.7.1 with the rule id, its description and the quoted evidence.

    One line: ``550 5.7.1 [review.removal] Do not ask buyers to remove reviews: "bitte ..."``;
    the evidence is truncated so the line stays within 512 octets.
    """
    if finding is None:
        return Reply(550, "5.7.1", "[policy] Message refused by policy")
    head = f"[{finding.rule}] {finding.description}"
    if not finding.evidence:
        return _fit(550, "5.7.1", head)
    # Keep the rule id and description; cut the head only if it alone is too long.
    room = MAX_REPLY_LINE - len("550 5.7.1 ") - len(': ""') - 20
    head = _clip(head, room)
    return _fit(550, "5.7.1", f"{head}: ", f'"{ascii_fold(finding.evidence)}"')


def sender_not_authorised(account: str, address: str, where: str, allowed: list[str]) -> Reply:
    """550 5.7.1: MAIL FROM (``where="envelope sender"``) or the From header is not the account's."""
    shown = address or "<>"
    head = f"{where} {shown} is not an authorised sender of account {account!r}"
    return _fit(550, "5.7.1", head, f"; allowed: {', '.join(allowed)}")


def auth_required() -> Reply:
    """530: neither an account network nor authenticated; the gateway is not an open relay."""
    return Reply(530, "5.7.0", "Authentication required")


def internal_error(queue_id: str) -> Reply:
    """451: an exception while processing; the sender keeps the message and retries."""
    return Reply(451, "4.3.0", f"Temporary internal error (queue id {queue_id}), try again later")


def processing_timeout(queue_id: str) -> Reply:
    """451: parse, policy and relay/quarantine did not finish within ``processing_timeout``."""
    return Reply(451, "4.4.5", f"Processing took too long (queue id {queue_id}), try again later")


def store_failed(queue_id: str) -> Reply:
    """451: the quarantine could not commit, so the message is not ours yet."""
    return Reply(451, "4.3.0", f"Could not store the message for review (queue id {queue_id}), try again later")


def upstream_failed(error: RelayError) -> Reply:
    """The upstream did not take the message.

    Connection problems and upstream 4xx become ``451`` (the sender retries);
    an upstream 5xx is passed back with its own code, so a permanent refusal
    stays permanent.
    """
    status, text = _split_enhanced(error.message)
    if error.temporary:
        status = status if status.startswith("4.") else "4.4.1" if error.code == 451 and not status else "4.4.0"
        return _fit(451, status, "Next hop deferred the message, try again later: ", f"{error.code} {text}")
    status = status if status.startswith("5.") else "5.0.0"
    code = error.code if 500 <= error.code <= 599 else 554
    return _fit(code, status, "Next hop refused the message: ", f"{error.code} {text}")


def _split_enhanced(message: str) -> tuple[str, str]:
    first, _, rest = message.strip().partition(" ")
    if _ENHANCED.match(first):
        return first, rest
    return "", message.strip()


# --- envelope and session limits ---------------------------------------------------


def size_exceeded(limit: int, profile: str | None = None) -> Reply:
    """552 5.3.4 (RFC 1870 6.1): the message, or its announced SIZE, is over the limit."""
    scope = f"the {profile} limit" if profile else "the limit"
    return Reply(552, "5.3.4", f"Message size exceeds {scope} of {limit} bytes")


def too_many_recipients(limit: int) -> Reply:
    """452 4.5.3 (RFC 5321 4.5.3.1.10): the client sends the rest in another transaction."""
    return Reply(452, "4.5.3", f"Too many recipients, at most {limit} per message")


def one_marketplace_per_message(profile: str, first_profile: str) -> Reply:
    """452 4.5.3: recipients of different marketplace profiles go in separate messages."""
    return _fit(
        452,
        "4.5.3",
        f"Send one message per marketplace: this recipient is for {profile}, earlier ones for {first_profile}",
    )


def too_many_connections(hostname: str, per_client: bool) -> Reply:
    """421 4.7.0 at connect: the total or per-client connection limit is reached."""
    which = "from your address" if per_client else "in total"
    return Reply(421, "4.7.0", f"{hostname} Too many connections {which}, try again later")


def timeout(hostname: str) -> Reply:
    """421 4.4.2: the client was silent longer than the command or DATA timeout."""
    return Reply(421, "4.4.2", f"{hostname} Error: timeout exceeded")


def shutting_down(hostname: str) -> Reply:
    """421 4.3.2: the gateway is stopping; the client retries elsewhere or later."""
    return Reply(421, "4.3.2", f"{hostname} Service shutting down, try again later")


def protocol_synchronization() -> Reply:
    """554 5.5.0: input arrived before the reply it depends on (bad pipelining, RFC 2920 3.1)."""
    return Reply(554, "5.5.0", "Error: SMTP protocol synchronization (command sent before the reply)")


def smuggling_refused() -> Reply:
    """550 5.5.2: a bare CR or LF around a lone dot, the SMTP smuggling pattern (RFC 5321 2.3.8)."""
    return Reply(550, "5.5.2", "Error: bare CR or LF around a dot line (SMTP smuggling) refused; end lines with CRLF")


def nul_refused() -> Reply:
    """550 5.6.0: NUL in message content (RFC 5321 4.5.2 / RFC 6152 forbid it)."""
    return Reply(550, "5.6.0", "Error: NUL character in message content refused")


def data_line_too_long(limit: int) -> Reply:
    """500 5.5.6 (RFC 5321 4.5.3.1.6): a text line longer than ``limit`` octets including CRLF."""
    return Reply(500, "5.5.6", f"Error: line too long, at most {limit} octets including CRLF (RFC 5321 4.5.3.1.6)")


def auth_invalid() -> Reply:
    """535 5.7.8 (RFC 4954 6): wrong user name or password."""
    return Reply(535, "5.7.8", "Authentication credentials invalid")


def auth_succeeded() -> Reply:
    """235 2.7.0 (RFC 4954 6)."""
    return Reply(235, "2.7.0", "Authentication successful")


def too_many_auth_failures(hostname: str) -> Reply:
    """421 4.7.0: repeated failed AUTH; the connection is closed."""
    return Reply(421, "4.7.0", f"{hostname} Too many authentication failures")


def starttls_required() -> Reply:
    """530 5.7.0 (RFC 3207 4): ``require_starttls`` and the client has not started TLS."""
    return Reply(530, "5.7.0", "Must issue a STARTTLS command first")


# --- enhanced status codes for aiosmtpd's own replies -----------------------------

# RFC 3463 codes for aiosmtpd's built-in replies, by reply code; a few texts get
# a more precise one. RFC 2034 exempts the greeting and EHLO/HELO replies, 334
# challenges and the 354 go-ahead.
_DEFAULT_ENHANCED = {
    211: "2.0.0",
    214: "2.0.0",
    221: "2.0.0",
    235: "2.7.0",
    250: "2.0.0",
    252: "2.5.0",
    421: "4.3.0",
    450: "4.0.0",
    451: "4.3.0",
    452: "4.5.3",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    535: "5.7.8",
    538: "5.7.11",
    550: "5.0.0",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.0.0",
    555: "5.5.4",
}
_BY_TEXT = (
    ("too long", "5.5.6"),
    ("strict ascii", "5.6.7"),
    ("smtputf8", "5.6.7"),
)
_EXEMPT = {220, 334, 354}


def with_enhanced_code(reply: str) -> str:
    """Insert an RFC 3463 enhanced code into a plain ``"503 Error: ..."`` reply.

    Replies that already carry one, multi-line EHLO parts and exempt codes pass unchanged.
    """
    if len(reply) < 4 or not reply[:3].isdigit() or reply[3] not in " -":
        return reply
    code = int(reply[:3])
    if code in _EXEMPT or reply[3] == "-":
        return reply
    _, _, text = reply.partition(" ")
    if _ENHANCED.match(text.partition(" ")[0]):
        return reply
    status = _DEFAULT_ENHANCED.get(code)
    if status is None:
        return reply
    lowered = text.lower()
    for needle, specific in _BY_TEXT:
        if needle in lowered and specific[0] == status[0]:
            status = specific
            break
    return f"{code} {status} {text}"
