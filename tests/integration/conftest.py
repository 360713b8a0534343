"""Fixtures: a loop thread, a real capture next hop, and the real gateway in front of it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

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


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA and a certificate for 127.0.0.1/localhost (trustme)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(cert, key, client)
