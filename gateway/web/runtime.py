"""Building the console from a configuration: the review service and what it runs on.

``gateway serve`` (next to the SMTP workers) and ``gateway admin`` (alone) both
call :func:`build_app`. The console gets its own store connection, upstream
pool (releases and notices), parser and policy holder, built from the same
configuration as the workers'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from starlette.applications import Starlette

from gateway.admin.service import ReviewService
from gateway.config import Config
from gateway.mime.parse import MessageParser
from gateway.policy.holder import PolicyHolder
from gateway.store import SqlStore, open_store
from gateway.store.records import Role
from gateway.upstream.pool import UpstreamPool
from gateway.web.app import create_app

log = structlog.get_logger(__name__)

#: The first admin ``--dev`` creates when the store has no console user (documented in the README).
DEV_ADMIN_NAME = "admin"
DEV_ADMIN_PASSWORD = "dev-console-password"  # noqa: S105 (a published development credential, --dev only)


@dataclass
class ConsoleRuntime:
    """The console's collaborators; :meth:`close` releases them."""

    config: Config
    store: SqlStore
    pool: UpstreamPool
    parser: MessageParser
    holder: PolicyHolder
    service: ReviewService

    @classmethod
    def open(cls, config: Config) -> ConsoleRuntime:
        """Open the store and compile the policy (raises ``PolicyError`` or a store error)."""
        holder = PolicyHolder.load(config)
        store = open_store(config.database_url)
        pool = UpstreamPool(config)
        parser = MessageParser(config.parser)
        service = ReviewService(store, pool, parser, holder, config)
        return cls(config, store, pool, parser, holder, service)

    async def ensure_dev_admin(self) -> None:
        """In ``--dev``, create the documented first admin when there is no console user yet."""
        if not self.config.dev or await self.service.list_users():
            return
        await self.service.add_user(DEV_ADMIN_NAME, DEV_ADMIN_PASSWORD, Role.ADMIN, actor="gateway --dev")
        log.warning(
            "dev_admin_created",
            user=DEV_ADMIN_NAME,
            password=DEV_ADMIN_PASSWORD,
            note="development only: create real users with `gateway users add`",
        )

    async def close(self) -> None:
        """Close the pool, the parser and the store."""
        await self.pool.close()
        self.parser.close()
        self.store.close()


def build_app(config: Config, *, after_reload: Sequence[Callable[[], None]] = ()) -> Starlette:
    """The console for ``config``, owning its runtime (opened now, closed when the server stops)."""
    runtime = ConsoleRuntime.open(config)
    app = create_app(
        config, runtime.service, runtime.holder, on_startup=runtime.ensure_dev_admin, on_shutdown=runtime.close
    )
    app.state.console.after_reload.extend(after_reload)
    return app
