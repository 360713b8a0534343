"""Store: decision log, quarantine, per-order state, audit log and console users.

SQLite by default (one gateway host), PostgreSQL when several gateways share one
store; the schema is created and upgraded by the shipped Alembic migrations when
the store opens. :func:`open_store` is the entry point.
"""

from gateway.store.errors import ConflictError, NotFoundError, SchemaError, StoreError
from gateway.store.sql import SqlStore, open_store

__all__ = ["ConflictError", "NotFoundError", "SchemaError", "SqlStore", "StoreError", "open_store"]
