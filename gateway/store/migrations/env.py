"""Alembic environment for the store's migrations.

The gateway runs migrations itself (:func:`gateway.store.migrate.upgrade`),
passing an open connection inside a transaction in ``config.attributes``.
Run by hand, ``alembic -x url=sqlite:///... upgrade head`` also works.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from gateway.store.engine import create_engine, write
from gateway.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can roll DDL back too once BEGIN is ours (see gateway.store.engine),
        # so a failed upgrade leaves the previous schema intact on both backends.
        transactional_ddl=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database as: alembic -x url=DATABASE_URL upgrade head")
    engine = create_engine(url)
    try:
        with write(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()
