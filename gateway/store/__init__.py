"""Store: decision log, quarantine, per-order state and audit (SQLite or PostgreSQL)."""
