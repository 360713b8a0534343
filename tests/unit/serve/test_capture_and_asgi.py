"""The --dev capture hop writes what it receives; extra ASGI services start and stop in the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.serve.asgi import AsgiService
from gateway.serve.capture import start_capture
from tests.support.messages import BUYER, SELLER, message


async def test_capture_hop_writes_each_message_byte_for_byte(tmp_path: Path) -> None:
    """Each relayed message lands in its own .eml file, exactly as received."""
    server = await start_capture(tmp_path / "captured", "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    first, second = message("one"), message("two", body="caf\u00e9\r\n")
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
        await client.sendmail(SELLER, [BUYER], first)
        await client.sendmail(SELLER, [BUYER], second)
    server.close()
    await server.wait_closed()
    files = sorted((tmp_path / "captured").glob("*.eml"))
    assert [f.read_bytes() for f in files] == [first, second]
    assert not list((tmp_path / "captured").glob("*.tmp"))


Scope = MutableMapping[str, Any]


async def hello(scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_asgi_service_serves_and_stops() -> None:
    """An extra ASGI app is served on its own port inside the supervisor's loop, and stops cleanly."""
    service = AsgiService("hello", hello, "127.0.0.1", 0)
    await service.start()
    host, port = service.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200")
    assert b"\r\n\r\n5\r\nhello\r\n" in response
    await service.stop()
    try:
        await asyncio.open_connection(host, port)
        raise AssertionError("still listening")
    except OSError:
        pass
