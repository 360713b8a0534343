"""Tests of the store (each runs on SQLite and PostgreSQL)."""
