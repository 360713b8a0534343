"""Durability across a crash: ``gateway serve`` killed with SIGKILL mid-traffic loses no accepted message.

The short version of ``bench/crash.py`` (the scenario is in :mod:`tests.support.crash`),
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storekit import backend_url, postgres
from tests.support.crash import CrashPlan, run_crash
from tests.support.servers import CaptureHop

__all__ = ["postgres"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigkill_mid_traffic_loses_no_accepted_message(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capture: CaptureHop
) -> None:
    """Every message answered 250 before or after the kill is in the quarantine or at the next hop."""
    database_url = None if backend == "sqlite" else backend_url(request, backend, str(tmp_path))
    plan = CrashPlan(messages=120, connections=4, kill_after=50)
    result = run_crash(plan, tmp_path, capture, database_url)
    counts = result.summary()
    print(f"crash test on {result.backend}: {counts}")  # shown with -s and in the failure report

    assert result.missing == [], counts
    # The kill really came in the middle: traffic before it, traffic retried and sent after it.
    assert counts["250 before kill"] >= plan.kill_after
    assert len(result.accepted) > counts["250 before kill"]
    # After the restart every message got a final answer: accepted, or refused by the policy.
    assert all(o.code == 250 or o.code >= 500 for o in result.outcomes.values()), counts
    # Mostly quarantined, some relayed, some refused: all three paths were exercised.
    assert counts["found in quarantine"] > counts["found at next hop"] > 0
    assert counts["rejected by policy (550)"] > 0
    # What the kill interrupted was stored at most once more (the client retried a lost reply).
    copies = [result.quarantined.get(n, 0) + result.relayed.get(n, 0) for n in result.accepted]
    assert max(copies) <= 2
