"""Building test messages for the parser tests."""

from __future__ import annotations

from email.message import EmailMessage


def build(
    plain: str | None = None,
    html: str | None = None,
    subject: str = "Your order",
    reply: bool = True,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    """A message with the given bodies and ``(filename, content type, data)`` attachments."""
    msg = EmailMessage()
    msg["From"] = "Shop <shop@seller.example>"
    msg["To"] = "buyer@marketplace.amazon.de"
    msg["Subject"] = subject
    if reply:
        msg["In-Reply-To"] = "<q1@marketplace.amazon.de>"
    if plain is not None:
        msg.set_content(plain)
    if html is not None:
        if plain is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
