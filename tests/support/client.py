"""Client helpers: smtplib wrappers that return (code, text), and a raw socket client."""

from __future__ import annotations

import smtplib
import socket
import time

from tests.support.messages import BUYER, SELLER, message


def send(
    host: str,
    port: int,
    raw: bytes | None = None,
    *,
    sender: str = SELLER,
    rcpts: tuple[str, ...] = (BUYER,),
    mail_options: tuple[str, ...] = (),
) -> tuple[int, str]:
    """One transaction with smtplib; the first non-2xx reply or the end-of-DATA reply."""
    with smtplib.SMTP(host, port, timeout=30) as client:
        return transact(client, raw, sender=sender, rcpts=rcpts, mail_options=mail_options)


def transact(
    client: smtplib.SMTP,
    raw: bytes | None = None,
    *,
    sender: str = SELLER,
    rcpts: tuple[str, ...] = (BUYER,),
    mail_options: tuple[str, ...] = (),
) -> tuple[int, str]:
    client.ehlo_or_helo_if_needed()
    code, text = client.mail(sender, list(mail_options))
    if code != 250:
        client.rset()
        return code, text.decode()
    accepted = 0
    last = (0, b"")
    for rcpt in rcpts:
        last = client.rcpt(rcpt)
        accepted += last[0] == 250
    if not accepted:
        client.rset()
        return last[0], last[1].decode()
    try:
        code, text = client.data(raw if raw is not None else message())
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code, exc.smtp_error.decode()
    return code, text.decode()


class RawClient:
    """A bare socket speaking SMTP byte by byte, for protocol violations smtplib will not commit."""

    def __init__(self, host: str, port: int, *, read_greeting: bool = True) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply() if read_greeting else ""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """One (possibly multi-line) reply, lines joined with newlines; "" at EOF."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                break
            lines.append(line.decode().rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return "\n".join(lines)

    def command(self, line: str) -> str:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout: float = 3.0) -> bool:
        """Whether the server closed the connection (EOF) within ``timeout``."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.file.readline():
                    return True
        except (TimeoutError, OSError):
            return False
        return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
