"""The event loop a worker process runs on (``server.event_loop``).

uvloop (libuv) is the default: in ``bench/load.py`` it cuts the CPU a worker
spends per one-message connection (accepting, reading and writing sockets)
compared with the standard library's selector loop. ``asyncio`` stays
available as a fallback. Tests build their loops here too, so they run on
what production runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import uvloop

T = TypeVar("T")

LoopKind = Literal["uvloop", "asyncio"]


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function that makes a new event loop of ``kind``."""
    if kind == "uvloop":
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: LoopKind) -> T:
    """``asyncio.run(main)`` on a loop of ``kind``."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
