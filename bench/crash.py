"""Crash benchmark: SIGKILL ``gateway serve`` mid-traffic and look for every accepted message.

Run with ``python bench/crash.py`` (``--messages``, ``--connections``, ``--kill-after``,
``--workers``, ``--rounds``, ``--backend sqlite|postgresql|both``). The result replaces the
part of ``docs/durability.md`` between ``<!-- bench:crash:begin -->`` and
``<!-- bench:crash:end -->``.

Each round (the scenario is :mod:`tests.support.crash`, shared with
``tests/integration/test_crash.py``): a real ``gateway serve`` with the shipped
policies relays to an aiosmtpd capture hop on loopback; several smtplib
connections send messages most of which quarantine; once ``--kill-after`` were
answered 250 the gateway's process group gets SIGKILL; the gateway is started
again on the same store; the client retries what got no final answer and sends
the rest; then every message answered 250 is looked for in the quarantine or at
the next hop. PostgreSQL runs in a fresh schema of the ``test`` database on
127.0.0.1:5432 (``GATEWAY_TEST_POSTGRES``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.storekit import PG_URL, PostgresSchemas  # noqa: E402
from tests.support.crash import CrashPlan, CrashResult, run_crash  # noqa: E402
from tests.support.servers import CaptureHop, LoopThread  # noqa: E402

DOCS = ROOT / "docs" / "durability.md"
BEGIN, END = "<!-- bench:crash:begin -->", "<!-- bench:crash:end -->"


def postgres_problem() -> str:
    """Why the PostgreSQL test database cannot be used ('' when it can)."""
    try:
        with psycopg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(False), connect_timeout=3):
            return ""
    except psycopg.Error as exc:
        return f"no PostgreSQL server answers at {make_url(PG_URL).render_as_string()}: {exc}"


def run_round(plan: CrashPlan, backend: str, schemas: PostgresSchemas) -> CrashResult:
    """One kill-and-restart round on ``backend`` with its own capture hop and data directory."""
    loop = LoopThread()
    capture = CaptureHop(loop).start()
    try:
        with tempfile.TemporaryDirectory(prefix="gw-crash-") as directory:
            url = schemas.new_url() if backend == "postgresql" else None
            return run_crash(plan, Path(directory), capture, url)
    finally:
        capture.stop()
        loop.close()


def table(results: list[CrashResult]) -> str:
    """The counts of every round, one column per round."""
    heads = [f"{r.backend} #{i}" for i, r in enumerate(results, start=1)]
    lines = ["| | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(results)]
    for key in results[0].summary():
        lines.append(f"| {key} | " + " | ".join(str(r.summary()[key]) for r in results) + " |")
    lines.append("| restart until listening (s) | " + " | ".join(f"{r.restart_seconds:.1f}" for r in results) + " |")
    return "\n".join(lines)


def report(results: list[CrashResult], plan: CrashPlan, command: str) -> str:
    """The Markdown section written to docs/durability.md."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    missing = sum(len(r.missing) for r in results)
    verdict = (
        "**No accepted message was missing** in any round."
        if missing == 0
        else f"**{missing} accepted messages were missing**: {[(r.backend, r.missing) for r in results]}"
    )
    return "\n".join(
        [
            BEGIN,
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
            f"Python {platform.python_version()}), commit {commit.strip() or '?'}, with `{command}`:",
            f"{plan.messages} messages per round over {plan.connections} connections, "
            f"{plan.workers} worker process(es), SIGKILL to the process group after {plan.kill_after} "
            "messages were answered 250.",
            "",
            table(results),
            "",
            verdict,
            END,
        ]
    )


def write_docs(section: str) -> None:
    """Replace the bench section of docs/durability.md (the rest of the page is kept)."""
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else f"# Durability\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOCS.write_text(head + section + tail, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--kill-after", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/durability.md alone")
    args = parser.parse_args()
    plan = CrashPlan(
        messages=args.messages, connections=args.connections, kill_after=args.kill_after, workers=args.workers
    )
    schemas = PostgresSchemas(PG_URL)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        schemas.reason = postgres_problem()
        if schemas.reason:
            print(f"PostgreSQL skipped: {schemas.reason}", file=sys.stderr)
            backends.remove("postgresql")
    results: list[CrashResult] = []
    try:
        for backend in backends:
            for number in range(1, args.rounds + 1):
                result = run_round(replace(plan, run_id=os.urandom(4).hex()), backend, schemas)
                print(f"{backend} round {number}: {result.summary()}", flush=True)
                results.append(result)
    finally:
        schemas.drop_all()
    section = report(results, plan, "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]))
    print(section)
    if not args.no_docs:
        write_docs(section)
    return 1 if any(r.missing for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
