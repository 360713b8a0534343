"""Store fixtures: every store test runs on SQLite and on PostgreSQL."""

from tests.storekit import database_url, postgres, store

__all__ = ["database_url", "postgres", "store"]
