"""The aiosmtpd handler: envelope checks at MAIL/RCPT, the pipeline at end of DATA.

aiosmtpd calls ``handle_*`` hooks that return reply strings (DESIGN.md "Style").
This handler never sees a rule; it decides only what the envelope allows:

- MAIL: the client must be an account (network or AUTH), else 530 5.7.0 (the
  gateway is not an open relay); the sender must be one of the account's
  addresses, else 550 5.7.1 naming the account; a new queue id is bound to the
  log context.
- RCPT: at most ``max_recipients`` (452 4.5.3); the current policy routes the
  recipients and one message goes to one marketplace profile (452 4.5.3 for a
  recipient of another); the route's size limit is checked against MAIL SIZE=
  (552 5.3.4).
- DATA: the route's size limit again (552 5.3.4), then :meth:`Pipeline.run`.
- any exception: 451 4.3.0, never aiosmtpd's default 500.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.config import Config
from gateway.logging import Pseudonymizer
from gateway.model import Envelope, Route
from gateway.pipeline import Pipeline
from gateway.pipeline_types import Policy
from gateway.smtp import replies
from gateway.smtp.session import GatewayEnvelope, GatewaySession

log = structlog.get_logger("gateway.smtp")

_QUEUE_ID_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZ"


def new_queue_id() -> str:
    """A short, time-ordered, unique id (milliseconds since the epoch plus randomness)."""
    millis = int(time.time() * 1000)
    chars = []
    while millis:
        millis, digit = divmod(millis, len(_QUEUE_ID_ALPHABET))
        chars.append(_QUEUE_ID_ALPHABET[digit])
    return "".join(reversed(chars)) + secrets.token_hex(3).upper()


class GatewayHandler:
    """aiosmtpd hooks for the gateway."""

    def __init__(self, config: Config, policy: Callable[[], Policy], pipeline: Pipeline) -> None:
        self._config = config
        self._policy = policy
        self._pipeline = pipeline
        self._pseudonyms = Pseudonymizer(config.logging)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd hook name)
        self, server: Any, session: GatewaySession, envelope: GatewayEnvelope, address: str, options: list[str]
    ) -> str:
        """Who may send as whom."""
        account = session.account
        if account is None:
            log.warning("relay_denied", sender=address, tls=session.ssl is not None)
            return str(replies.auth_required())
        sender = "" if address == "<>" else address
        if not account.sender_allowed(sender):
            log.warning("sender_refused", account=account.name, sender=sender)
            return str(replies.sender_not_authorised(account.name, sender, "Envelope sender", account.senders))
        envelope.queue_id = new_queue_id()
        structlog.contextvars.bind_contextvars(queue_id=envelope.queue_id)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        for option in options:
            name, _, value = option.partition("=")
            if name.upper() == "SIZE" and value.isdigit():
                envelope.declared_size = int(value)
        return "250 2.1.0 Ok"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
        self, server: Any, session: GatewaySession, envelope: GatewayEnvelope, address: str, options: list[str]
    ) -> str:
        """Recipient count, one marketplace per message, and the route's size limit."""
        limit = self._config.server.max_recipients
        if len(envelope.rcpt_tos) >= limit:
            return str(replies.too_many_recipients(limit))
        policy = self._policy()
        alone = policy.route([address])
        first = envelope.route
        if first is not None and (alone.profile, alone.upstream) != (first.profile, first.upstream):
            log.info("recipient_deferred", recipient=self._pseudonyms.address(address), profile=alone.profile)
            return str(replies.one_marketplace_per_message(alone.profile, first.profile))
        route = policy.route([*envelope.rcpt_tos, address])
        max_size = route.max_message_size
        if max_size is not None and envelope.declared_size is not None and envelope.declared_size > max_size:
            return str(replies.size_exceeded(max_size, route.profile))
        envelope.route = route
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: GatewaySession, envelope: GatewayEnvelope) -> str:  # noqa: N802
        """Run the pipeline on the received message."""
        raw = envelope.content
        route = envelope.route
        assert isinstance(raw, bytes)
        assert route is not None
        try:
            if route.max_message_size is not None and len(raw) > route.max_message_size:
                log.warning("message_refused", reason="size", size=len(raw), limit=route.max_message_size)
                return str(replies.size_exceeded(route.max_message_size, route.profile))
            reply = await self._pipeline.run(self._envelope(session, envelope, route), route, raw)
            return str(reply)
        finally:
            structlog.contextvars.unbind_contextvars("queue_id")

    async def handle_RSET(self, server: Any, session: GatewaySession, envelope: GatewayEnvelope) -> str:  # noqa: N802
        """End the transaction's log context."""
        structlog.contextvars.unbind_contextvars("queue_id")
        return "250 2.0.0 Ok"

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected is temporary for the sender: 451, not aiosmtpd's 500."""
        queue_id = structlog.contextvars.get_contextvars().get("queue_id", "-")
        log.error("session_failed", exc_info=error)
        return str(replies.internal_error(str(queue_id)))

    def _envelope(self, session: GatewaySession, envelope: GatewayEnvelope, route: Route) -> Envelope:
        account = session.account
        return Envelope(
            queue_id=envelope.queue_id,
            mail_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=session.client,
            helo=session.host_name or "",
            account=account.name if account is not None else None,
            tls=session.ssl is not None,
            received_at=datetime.now(UTC),
            mail_options=tuple(envelope.mail_options),
            authenticated=session.via_auth,
        )
