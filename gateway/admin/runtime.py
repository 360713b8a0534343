"""A :class:`ReviewService` over a configuration's real parts, for the CLI (and any console).

The parts are the ones a serve worker builds from the same configuration
(:mod:`gateway.serve.worker`): the store at ``config.database_url``, the
:class:`~gateway.upstream.pool.UpstreamPool` releases and notices go through,
the :class:`~gateway.mime.parse.MessageParser` with the configured limits, and
the configured policy (:meth:`PolicyHolder.load`). Compiling the policy takes
seconds, and only release (routing) and rescan read it, so it is loaded on
first use; :meth:`ReviewRuntime.load_policy` loads it up front so a broken
policy set is reported before anything is claimed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.admin.service import ReviewService
from gateway.config import Config
from gateway.mime.parse import MessageParser
from gateway.policy.engine import CompiledPolicy
from gateway.policy.holder import PolicyHolder
from gateway.store import SqlStore, open_store
from gateway.upstream.pool import UpstreamPool


@dataclass
class LazyPolicy:
    """The configured policy, compiled on the first call (a policy provider for the service)."""

    config: Config
    _holder: PolicyHolder | None = field(default=None, init=False)

    def __call__(self) -> CompiledPolicy:
        """The policy (raises :class:`~gateway.policy.loader.PolicyError` if the files are invalid)."""
        if self._holder is None:
            self._holder = PolicyHolder.load(self.config)
        return self._holder.current


@dataclass
class ReviewRuntime:
    """A review service and the parts it owns."""

    service: ReviewService
    store: SqlStore
    policy: LazyPolicy

    def load_policy(self) -> None:
        """Compile the policy now (raises ``PolicyError`` when the files are invalid)."""
        self.policy()


@asynccontextmanager
async def open_review(config: Config) -> AsyncIterator[ReviewRuntime]:
    """Open the store (migrating it if needed) and build the service; close everything after.

    Raises:
        StoreError: the database is unusable or does not answer.
    """
    store = open_store(config.database_url)
    parser = MessageParser(config.parser)
    pool = UpstreamPool(config)
    policy = LazyPolicy(config)
    try:
        yield ReviewRuntime(ReviewService(store, pool, parser, policy, config), store, policy)
    finally:
        await pool.close()
        parser.close()
        store.close()
