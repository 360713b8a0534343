"""Errors the store raises; the service and the CLI turn them into clear messages."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (the pipeline answers 451)."""


class SchemaError(StoreError):
    """The database schema cannot be brought to the version this code needs."""


class NotFoundError(StoreError):
    """No row with this id (a quarantine id, a user name)."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"no {what} with id {ident!r}")
        self.what = what
        self.ident = ident


class ConflictError(StoreError):
    """The row is not in a state that allows the action (already released, claimed...)."""

    def __init__(self, ident: str, status: str, detail: str) -> None:
        super().__init__(f"{ident}: {detail}")
        self.ident = ident
        self.status = status
        self.detail = detail
