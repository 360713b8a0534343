"""Helpers to build messages for the parser tests."""

from __future__ import annotations

import pytest

from gateway.config import ParserConfig


@pytest.fixture
def limits() -> ParserConfig:
    """Default parser limits without a worker pool (inline parsing)."""
    return ParserConfig(pool_workers=0)
