"""quarantine() returns only after its commit: a process killed with SIGKILL loses nothing it reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from gateway.store import open_store

_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from gateway.store import open_store
    from tests.storekit import decision, raw_message

    store = open_store(sys.argv[1])
    n = 0
    while True:
        n += 1
        d = decision(f"K{n:07d}", decided_at=datetime.now(UTC))
        qid = store.quarantine(d, raw_message(f"crash {n}"))
        # The id is printed only after quarantine() returned: what the SMTP 250 waits for.
        print("stored", qid, flush=True)
    """
)


def test_every_reported_quarantine_survives_sigkill(database_url: str) -> None:
    """Each id the writer saw returned is stored with its exact bytes after the writer is SIGKILLed."""
    open_store(database_url).close()  # schema first, so the writer starts quarantining at once
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, database_url],
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None
    reported: list[str] = []
    with proc.stdout:
        while len(reported) < 150:
            line = proc.stdout.readline().decode()
            assert line, "the writer died before quarantining 150 messages"
            if line.startswith("stored "):
                reported.append(line.split()[1])
        proc.send_signal(signal.SIGKILL)
        # Anything already written to the pipe was also reported as accepted.
        reported += [line.split()[1] for line in proc.stdout.read().decode().splitlines() if line.startswith("stored ")]
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    store = open_store(database_url)
    try:
        for n, qid in enumerate(reported, start=1):
            assert qid == f"K{n:07d}"
            assert store.raw(qid).startswith(b"From: Support")
            assert f"crash {n}".encode() in store.raw(qid)
    finally:
        store.close()
