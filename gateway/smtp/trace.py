"""The ``Received:`` trace header the gateway prepends (RFC 5321 4.4).

It records where the message came from, that it passed this gateway, the
protocol (RFC 3848: ``ESMTP``, ``ESMTPS`` with TLS, ``ESMTPA``/``ESMTPSA`` with
AUTH) and the queue id, so a message at the marketplace can be traced back to
the gateway's decision log.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from gateway.model import Envelope

_UNSAFE = re.compile(r"[^A-Za-z0-9.:_\-\[\]@]")


def _clean(text: str) -> str:
    """Client-supplied names are untrusted: keep a safe subset, never a line break or comment."""
    return _UNSAFE.sub("?", text)[:255] or "unknown"


def received_header(envelope: Envelope, hostname: str, product: str = "marketplace-mail-gateway") -> bytes:
    """The ``Received:`` header for ``envelope``, folded, ending in CRLF."""
    protocol = "ESMTP" + ("S" if envelope.tls else "") + ("A" if envelope.authenticated else "")
    when = envelope.received_at or datetime.now(UTC)
    # RFC 5321 4.1.3: an IPv6 address literal is tagged "IPv6:".
    peer = f"IPv6:{envelope.peer}" if ":" in envelope.peer else envelope.peer
    lines = [
        f"Received: from {_clean(envelope.helo)} ([{_clean(peer)}])",
        f"\tby {_clean(hostname)} ({product}) with {protocol} id {envelope.queue_id}",
    ]
    # Like Postfix, name the recipient only when there is exactly one.
    if len(envelope.rcpt_tos) == 1:
        lines.append(f"\tfor <{_clean(envelope.rcpt_tos[0])}>; {email.utils.format_datetime(when)}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{email.utils.format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
