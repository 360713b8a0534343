"""Load benchmark: the gateway between smtp-source and smtp-sink, next to two yardsticks.

Run with ``./dev bench load`` (or ``python bench/load.py``); results go to
``docs/benchmarks.md`` between ``<!-- bench:load:begin -->`` and
``<!-- bench:load:end -->``.

Targets, measured in the same run against one smtp-sink:

1. smtp-sink alone (the ceiling of this machine's loopback and client);
2. a bare aiosmtpd relay that opens one aiosmtplib connection per message
   (no parsing, no policy, no store, no logging): the yardstick the gateway
   must at least match with an empty policy;
3. ``gateway serve`` with an empty policy (every shipped rule disabled through
   a local override), SQLite decision log and JSON logging, with 1 and with 2
   worker processes.

Two measurements per target:

- throughput: Postfix's ``smtp-source`` (10 sessions, one message per
  connection as it does by default, 4 KB bodies), wall-clock time for all
  messages;
- latency: smtp-source does not report it, so a Python client fleet (asyncio,
  10 concurrent sessions, one message per connection, same size) timestamps
  each message from writing the final ``.`` to reading the ``250``
  ("DATA->250"), i.e. the time the sender waits while the gateway parses,
  evaluates and relays. The fleet runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:load:begin -->", "<!-- bench:load:end -->"
SENDER, RECIPIENT = "a@seller.example", "b@marketplace.amazon.de"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- the targets -----------------------------------------------------------------------


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port


def start_bare_relay(sink_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--bare-relay", str(port), str(sink_port)])
    wait_for_port(port)
    return proc, port


def bare_relay(port: int, sink_port: int) -> None:
    """The yardstick: aiosmtpd in, one fresh aiosmtplib connection per message out."""
    import aiosmtplib
    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Relay:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
            assert envelope.mail_from is not None
            assert isinstance(envelope.content, bytes)
            try:
                await aiosmtplib.send(
                    envelope.content,
                    sender=envelope.mail_from,
                    recipients=envelope.rcpt_tos,
                    hostname="127.0.0.1",
                    port=sink_port,
                    start_tls=False,
                )
            except aiosmtplib.SMTPException as exc:
                return f"451 4.4.0 {exc}"
            return "250 2.0.0 Ok"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Relay()
        server = await loop.create_server(lambda: SMTP(handler, hostname="bare", loop=loop), "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


def start_core(sink_port: int, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--core", str(port), str(sink_port), str(directory)])
    wait_for_port(port)
    return proc, port


def core(port: int, sink_port: int, directory: Path) -> None:
    """The SMTP core alone: the real server, handler, pipeline, pool, policy and logging,
    with a parser that reads only the headers and no store, to separate the core's own
    cost from the parser's and the store's."""
    from gateway.config import parse_config
    from gateway.logging import configure_logging
    from gateway.mime.parse import parse_headers
    from gateway.mime.types import ParsedMessage
    from gateway.pipeline import Pipeline
    from gateway.policy.holder import PolicyHolder
    from gateway.smtp.auth import AccountDirectory
    from gateway.smtp.handler import GatewayHandler
    from gateway.smtp.listener import SmtpServer, bind_socket
    from gateway.state import MemoryState
    from gateway.upstream.pool import UpstreamPool

    class HeadersOnly:
        async def parse(self, raw: bytes) -> ParsedMessage:
            return parse_headers(raw)

        def parse_headers(self, raw: bytes) -> ParsedMessage:
            return parse_headers(raw)

    class NoStore:
        def record_decision(self, decision: object) -> None: ...
        def quarantine(self, decision: object, raw: bytes) -> str:
            raise RuntimeError("the empty policy holds nothing")

        def load_state(self, order_ids: object, buyer: object, buyer_since: object) -> MemoryState:
            return MemoryState()

        def record_events(self, events: object) -> None: ...

    local = directory / "policy-local"
    config = parse_config(
        {
            "data_dir": str(directory),
            "server": {"listen": f"127.0.0.1:{port}", "hostname": "bench.gateway", "max_connections_per_client": 1000},
            "accounts": [{"name": "bench", "networks": ["127.0.0.0/8"], "senders": ["@seller.example"]}],
            "upstreams": {"default": {"host": "127.0.0.1", "port": sink_port, "tls": "none", "pool_size": 10}},
            "policy": {"local_path": str(local)},
        }
    )
    log_file = open(directory / "core.log", "w")  # noqa: SIM115 (lives as long as the process)
    configure_logging(config.logging, stream=log_file)
    holder = PolicyHolder.load(config)

    async def main() -> None:
        pool = UpstreamPool(config)
        pipeline = Pipeline(HeadersOnly(), holder, pool, NoStore(), config)  # type: ignore[arg-type]
        server = SmtpServer(config, GatewayHandler(config, holder, pipeline), AccountDirectory(config))
        await server.start(bind_socket("127.0.0.1", port))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.shutdown(1)
        await pool.close()

    asyncio.run(main())


def empty_policy_override(directory: Path) -> Path:
    """A local override turning every shipped rule off: the gateway's "empty policy"."""
    import yaml

    local = directory / "policy-local"
    (local / "rules").mkdir(parents=True)
    for path in sorted((ROOT / "policies" / "rules").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rules = data.get("rules", data) if isinstance(data, dict) else data
        ids = [r["id"] for r in rules if isinstance(r, dict) and "id" in r] if isinstance(rules, list) else []
        if ids:
            body = {"rules": [{"id": rule_id, "enabled": False} for rule_id in ids]}
            (local / "rules" / path.name).write_text(yaml.safe_dump(body), encoding="utf-8")
    return local


def start_gateway(sink_port: int, workers: int, directory: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    config = directory / f"gateway-{workers}.toml"
    data_dir = directory / f"data-{workers}"
    data_dir.mkdir()
    local = directory / "policy-local"
    if not local.exists():
        empty_policy_override(directory)
    config.write_text(
        f"""
data_dir = "{data_dir}"
[server]
listen = "127.0.0.1:0"
hostname = "bench.gateway"
max_connections = 1000
max_connections_per_client = 1000
[[accounts]]
name = "bench"
networks = ["127.0.0.0/8"]
senders = ["@seller.example"]
[upstreams.default]
host = "127.0.0.1"
port = {sink_port}
tls = "none"
pool_size = 10
[policy]
local_path = "{local}"
[logging]
format = "json"
level = "info"
""",
        encoding="utf-8",
    )
    log = directory / f"gateway-{workers}.log"
    gateway = shutil.which("gateway", path=str(Path(sys.executable).parent)) or "gateway"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [gateway, "serve", "--config", str(config), "--workers", str(workers)], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if '"server_started"' in line:
                port = int(json.loads(line)["listen"].rsplit(":", 1)[1])
                return proc, port, log
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the measurements ------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its live descendants (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu_seconds(int(child)) for child in children)


def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Seconds smtp-source takes for ``messages`` (it aborts on any unexpected reply)."""
    started = time.perf_counter()
    # -N: a different recipient per message (a helpdesk writes to many buyers).
    command = ["smtp-source", "-N", "-m", str(messages), "-s", str(sessions), "-l", str(size)]
    subprocess.run([*command, "-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"], check=True)
    return time.perf_counter() - started


async def _one_message(port: int, body: bytes, rcpt: str, latencies: list[float], totals: list[float]) -> None:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if not line or line[3:4] != b"-":
                return line

    async def command(line: bytes, expect: bytes) -> None:
        writer.write(line + b"\r\n")
        answer = await reply()
        if not answer.startswith(expect):
            raise RuntimeError(f"{line!r}: {answer!r}")

    if not (await reply()).startswith(b"220"):
        raise RuntimeError("no greeting")
    await command(b"EHLO fleet.bench", b"250")
    await command(f"MAIL FROM:<{SENDER}>".encode(), b"250")
    await command(f"RCPT TO:<{rcpt}>".encode(), b"250")
    await command(b"DATA", b"354")
    writer.write(body + b".\r\n")
    sent = time.perf_counter()
    answer = await reply()
    done = time.perf_counter()
    if not answer.startswith(b"250"):
        raise RuntimeError(f"DATA: {answer!r}")
    latencies.append(done - sent)
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()
    await writer.wait_closed()
    totals.append(time.perf_counter() - started)


async def _fleet(port: int, messages: int, sessions: int, size: int) -> dict[str, float]:
    header = (
        f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: load test\r\nMessage-ID: <bench@seller.example>\r\n\r\n"
    ).encode()
    line = b"X" * 78 + b"\r\n"
    body = header + line * (size // len(line))
    latencies: list[float] = []
    totals: list[float] = []
    remaining = iter(range(messages))

    async def session() -> None:
        for number in remaining:
            await _one_message(port, body, f"{number}{RECIPIENT}", latencies, totals)

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "msgs_per_s": messages / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
        "total_p50_ms": statistics.median(totals) * 1000,
    }


def fleet(port: int, messages: int, sessions: int, size: int) -> dict[str, float]:
    """Run the latency fleet in its own process and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--fleet", str(port), str(messages), str(sessions), str(size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


@dataclass
class Result:
    name: str
    source_seconds: float
    source_rate: float
    fleet: dict[str, float]
    cpu_ms: float  # the target's CPU time per message during the fleet run


def measure(name: str, port: int, args: argparse.Namespace, pid: int) -> Result:
    fleet(port, min(200, args.messages), args.sessions, args.size)  # warm-up (imports, pools, caches)
    seconds = smtp_source(port, args.messages, args.sessions, args.size)
    before = tree_cpu_seconds(pid)
    figures = fleet(port, args.latency_messages, args.sessions, args.size)
    cpu_ms = (tree_cpu_seconds(pid) - before) / args.latency_messages * 1000
    result = Result(name, seconds, args.messages / seconds, figures, cpu_ms)
    print(
        f"{name}: smtp-source {seconds:.2f} s ({result.source_rate:.0f} msg/s); fleet "
        f"{figures['msgs_per_s']:.0f} msg/s, DATA->250 p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, CPU {cpu_ms:.1f} ms/msg",
        flush=True,
    )
    return result


CORE_LABEL = "SMTP core only (headers-only parser, no store)"


def stage_medians(log: Path) -> dict[str, float]:
    """Median milliseconds per pipeline stage, from the gateway's own message_decided events."""
    durations: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"message_decided"' in line:
            for stage, ms in json.loads(line)["durations_ms"].items():
                durations.setdefault(stage, []).append(ms)
    return {stage: statistics.median(values) for stage, values in durations.items()}


# --- the report --------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def report(results: list[Result], stages: dict[str, float], args: argparse.Namespace) -> str:
    rows = [
        "| target | smtp-source: time for all | msg/s | fleet msg/s | DATA->250 p50 | p95 | p99 | CPU per message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        f = r.fleet
        rows.append(
            f"| {r.name} | {r.source_seconds:.2f} s | {r.source_rate:.0f} | {f['msgs_per_s']:.0f} | "
            f"{f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms | {f['p99_ms']:.1f} ms | {r.cpu_ms:.1f} ms |"
        )
    bare = next(r for r in results if r.name.startswith("bare"))
    gateway_one = next(r for r in results if r.name.startswith("gateway") and "1 worker" in r.name)
    core_only = next(r for r in results if r.name == CORE_LABEL)
    verdict = "at least as fast as" if gateway_one.source_rate >= bare.source_rate else "slower than"
    core_verdict = "at least as fast as" if core_only.source_rate >= bare.source_rate else "slower than"
    stage_text = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in stages.items())
    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, load average {load_average()} "
            f"at the end, with `./dev bench load`: {args.messages} messages of {args.size} bytes from "
            f"{args.sessions} smtp-source sessions (one message per connection, a new recipient each), then "
            f"{args.latency_messages} messages from a Python fleet of {args.sessions} sessions timing DATA->250 "
            "(from writing the final dot to reading the reply). Every target relays to the same smtp-sink. "
            "CPU per message is the target's own CPU time (all its processes) during the fleet run divided by "
            "its messages: less sensitive than rates to what else the machine runs.",
            "",
            *rows,
            "",
            f"- With one worker the gateway is **{verdict}** the bare relay "
            f"({gateway_one.source_rate:.0f} vs {bare.source_rate:.0f} msg/s; "
            f"{gateway_one.cpu_ms:.1f} vs {bare.cpu_ms:.1f} ms of CPU per message). It parses every message, "
            "evaluates the (empty) policy, reads per-order state and writes a decision to SQLite, logs JSON, "
            "and keeps upstream connections open (the bare relay opens one per message).",
            f"- Median time per stage inside the one-worker gateway (its `message_decided` events): {stage_text}.",
            f"- The SMTP core alone (same server, handler, pipeline, upstream pool, policy and logging; a parser "
            f"that reads only the headers; no store) is **{core_verdict}** the bare relay "
            f"({core_only.source_rate:.0f} vs {bare.source_rate:.0f} msg/s; {core_only.cpu_ms:.1f} vs "
            f"{bare.cpu_ms:.1f} ms of CPU per message). The rest of the gateway's cost is the parser and the store: "
            f"{gateway_one.cpu_ms - core_only.cpu_ms:.1f} ms of CPU per message.",
        ]
    )


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n## Load: SMTP throughput and latency (`./dev bench load`)\n\n{section}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-relay":
        bare_relay(int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--core":
        core(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--fleet":
        port, messages, sessions, size = map(int, sys.argv[2:6])
        print(json.dumps(asyncio.run(_fleet(port, messages, sessions, size))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("load", nargs="?", help=argparse.SUPPRESS)  # ./dev bench load passes its own name
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    results: list[Result] = []
    stages: dict[str, float] = {}
    directory = Path(tempfile.mkdtemp(prefix="bench-load-"))
    sink, sink_port = start_sink()
    try:
        results.append(measure("smtp-sink alone", sink_port, args, sink.pid))
        bare, port = start_bare_relay(sink_port)
        try:
            results.append(measure("bare aiosmtpd relay, one aiosmtplib connection per message", port, args, bare.pid))
        finally:
            stop(bare)
        empty_policy_override(directory)
        for workers in (1, 2):
            gateway, port, log = start_gateway(sink_port, workers, directory)
            try:
                label = "worker" if workers == 1 else "workers"
                results.append(measure(f"gateway, empty policy, {workers} {label}", port, args, gateway.pid))
            finally:
                stop(gateway)
            if workers == 1:
                stages = stage_medians(log)
        core_proc, port = start_core(sink_port, directory)
        try:
            results.append(measure(CORE_LABEL, port, args, core_proc.pid))
        finally:
            stop(core_proc)
    finally:
        stop(sink)
        shutil.rmtree(directory, ignore_errors=True)
    section = report(results, stages, args)
    print(section)
    if not args.no_write:
        write_docs(section)
        print(f"written to {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
