"""Test messages built as raw bytes, the way a helpdesk would send them."""

from __future__ import annotations

SELLER = "support@seller.example"
BUYER = "0a1b2c3d4e5f@marketplace.amazon.de"


def message(
    subject: str = "Re: your order",
    *,
    sender: str = SELLER,
    to: str = BUYER,
    body: str = "Hello,\r\n\r\nyour parcel left our warehouse today.\r\n\r\nKind regards\r\n",
    extra_headers: str = "",
) -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    head = (
        f"From: Seller Support <{sender}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        "Message-ID: <test-1@seller.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"{extra_headers}"
        "\r\n"
    )
    return head.encode() + body.encode()
