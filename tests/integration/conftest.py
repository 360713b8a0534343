"""Fixtures: a loop thread, a real capture next hop, and the real gateway in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.fakes import FakeParser, FakePolicy, FakeStore
from tests.support.servers import CaptureHop, LoopThread, RunningGateway, make_config, start_gateway

GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def capture(loop_thread: LoopThread) -> Iterator[CaptureHop]:
    hop = CaptureHop(loop_thread).start()
    yield hop
    hop.stop()


@pytest.fixture
def gateway_factory(loop_thread: LoopThread, capture: CaptureHop) -> Iterator[GatewayFactory]:
    started: list[RunningGateway] = []

    def factory(
        *,
        upstream_port: int | None = None,
        parser: FakeParser | None = None,
        policy: FakePolicy | None = None,
        store: FakeStore | None = None,
        **sections: Any,
    ) -> RunningGateway:
        config = make_config(capture.port if upstream_port is None else upstream_port, **sections)
        gw = start_gateway(loop_thread, config, parser=parser, policy=policy, store=store)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.shutdown(grace=0.5)


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> RunningGateway:
    return gateway_factory()
