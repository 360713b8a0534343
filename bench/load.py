"""Load benchmark: the gateway between smtp-source and smtp-sink, next to two yardsticks.

Run with ``./dev bench load`` (or ``python bench/load.py``); results go to
``docs/benchmarks.md`` between ``<!-- bench:load:begin -->`` and
``<!-- bench:load:end -->``.

Targets, all started once and measured against one smtp-sink:

1. smtp-sink alone (the ceiling of this machine's loopback and client);
2. a bare aiosmtpd relay that opens one aiosmtplib connection per message
   (no parsing, no policy, no store, no logging) on the standard asyncio loop:
   the yardstick the gateway must at least match with an empty policy; the same
   relay on uvloop is measured too, so the event loop's share is visible;
3. ``gateway serve`` with an empty policy (every shipped rule disabled through
   a local override), SQLite decision log and JSON logging, with 1 and with 2
   worker processes, on its default event loop;
4. the gateway's SMTP core alone (no MIME parser beyond the headers, no store).

Throughput: Postfix's ``smtp-source`` (10 sessions, one message per connection
as it does by default, 4 KB bodies), wall-clock time for all messages. The
machine is shared and its speed drifts, so the targets are measured in several
rounds, each round running every target once in turn (the order rotates); the
report gives each target's median and, for the verdict, the median of the
per-round ratio gateway/bare relay (both measured within seconds of each other).

Latency: smtp-source does not report it, so a Python client fleet (asyncio, 10
concurrent sessions, one message per connection, same size) timestamps each
message from writing the final ``.`` to reading the ``250`` ("DATA->250"),
i.e. the time the sender waits while the gateway parses, evaluates and relays.
The fleet runs in its own process, once per target after the rounds.
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


def start_bare_relay(sink_port: int, loop: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--bare-relay", str(port), str(sink_port), loop])
    wait_for_port(port)
    return proc, port


def bare_relay(port: int, sink_port: int, loop_kind: str) -> None:
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

    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
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
    from gateway.eventloop import run
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

        def record_batch(self, batch: object, events: object) -> None: ...

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
        pipeline = Pipeline(HeadersOnly(), holder, pool, NoStore(), config)
        server = SmtpServer(config, GatewayHandler(config, holder, pipeline), AccountDirectory(config))
        await server.start(bind_socket("127.0.0.1", port))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.shutdown(1)
        await pool.close()

    run(main(), config.server.event_loop)


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
            [gateway, "serve", "--config", str(config), "--workers", str(workers), "--admin-listen", "127.0.0.1:0"],
            stdout=out,
            stderr=subprocess.STDOUT,
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
class Target:
    """A running target and its figures."""

    name: str
    port: int
    pid: int
    rates: list[float]  # smtp-source msg/s, one per round
    cpu_ms: list[float]  # the target's CPU time per message, one per round
    fleet: dict[str, float]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


def one_round(target: Target, args: argparse.Namespace) -> None:
    """One smtp-source run against ``target``: its rate and CPU per message."""
    before = tree_cpu_seconds(target.pid)
    seconds = smtp_source(target.port, args.messages, args.sessions, args.size)
    target.cpu_ms.append((tree_cpu_seconds(target.pid) - before) / args.messages * 1000)
    target.rates.append(args.messages / seconds)
    print(f"  {target.name}: {target.rates[-1]:.0f} msg/s, CPU {target.cpu_ms[-1]:.2f} ms/msg", flush=True)


CORE_LABEL = "SMTP core only (headers-only parser, no store)"
BARE_LABEL = "bare aiosmtpd relay, one aiosmtplib connection per message"


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


def ratio_text(ours: Target, theirs: Target) -> str:
    """Median and range of the per-round throughput ratio ``ours / theirs``."""
    ratios = [a / b for a, b in zip(ours.rates, theirs.rates, strict=True)]
    return f"{statistics.median(ratios):.2f}x (rounds: {min(ratios):.2f}-{max(ratios):.2f})"


def report(targets: list[Target], stages: dict[str, float], args: argparse.Namespace) -> str:
    rows = [
        "| target | smtp-source msg/s, median | rounds (min-max) | CPU per message | fleet msg/s "
        "| DATA->250 p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        f = t.fleet
        rows.append(
            f"| {t.name} | {t.rate:.0f} | {min(t.rates):.0f}-{max(t.rates):.0f} | {t.cpu:.2f} ms | "
            f"{f['msgs_per_s']:.0f} | {f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms | {f['p99_ms']:.1f} ms |"
        )
    by_name = {t.name: t for t in targets}
    bare, bare_uv = by_name[BARE_LABEL], by_name[f"{BARE_LABEL}, on uvloop"]
    one, two = by_name["gateway, empty policy, 1 worker"], by_name["gateway, empty policy, 2 workers"]
    core_only = by_name[CORE_LABEL]
    ratios = [a / b for a, b in zip(one.rates, bare.rates, strict=True)]
    verdict = "at least as fast as" if statistics.median(ratios) >= 1 else "slower than"
    stage_text = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in stages.items())
    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, load average {load_average()} "
            f"at the end, with `./dev bench load`: {args.rounds} rounds; in each, every target takes "
            f"{args.messages} messages of {args.size} bytes from {args.sessions} smtp-source sessions (one message "
            "per connection, a new recipient each), one target after the other. Then "
            f"{args.latency_messages} messages per target from a Python fleet of {args.sessions} sessions timing "
            "DATA->250 (from writing the final dot to reading the reply). Every target relays to the same "
            "smtp-sink. CPU per message is the target's own CPU time (all its processes and threads) during a "
            "round divided by its messages.",
            "",
            *rows,
            "",
            f"- With one worker the gateway is **{verdict}** the bare relay: {ratio_text(one, bare)} its "
            f"throughput, measured side by side in each round ({one.rate:.0f} vs {bare.rate:.0f} msg/s; "
            f"{one.cpu:.2f} vs {bare.cpu:.2f} ms of CPU per message). The gateway parses the headers, evaluates "
            "the (empty) policy, writes a decision and per-buyer state to SQLite, logs three JSON events per "
            "connection, and keeps upstream connections open (the bare relay opens one per message).",
            f"- Part of that is the event loop: the gateway runs on uvloop (`server.event_loop`, the default). "
            f"The bare relay on uvloop does {bare_uv.rate:.0f} msg/s ({ratio_text(bare_uv, bare)} the asyncio "
            f"one); the one-worker gateway is {ratio_text(one, bare_uv)} of that.",
            f"- Two workers: {ratio_text(two, bare)} the bare relay.",
            f"- Median time per stage inside the one-worker gateway (its `message_decided` events): {stage_text}.",
            f"- The SMTP core alone (same server, handler, pipeline, upstream pool, policy and logging; a parser "
            f"that reads only the headers; no store) does {core_only.rate:.0f} msg/s "
            f"({ratio_text(core_only, bare)} the bare relay, {core_only.cpu:.2f} ms of CPU per message); the "
            f"store costs the one-worker gateway {one.cpu - core_only.cpu:.2f} ms of CPU per message.",
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
        bare_relay(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
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
    parser.add_argument("--rounds", type=int, default=5, help="smtp-source runs per target, interleaved")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="bench-load-"))
    processes: list[subprocess.Popen[bytes]] = []
    targets: list[Target] = []
    log = directory / "none"

    def add(name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        processes.append(proc)
        targets.append(Target(name, port, proc.pid, [], [], {}))

    sink, sink_port = start_sink()
    try:
        targets.append(Target("smtp-sink alone", sink_port, sink.pid, [], [], {}))
        add(BARE_LABEL, *start_bare_relay(sink_port, "asyncio"))
        add(f"{BARE_LABEL}, on uvloop", *start_bare_relay(sink_port, "uvloop"))
        empty_policy_override(directory)
        for workers in (1, 2):
            gateway, port, gateway_log = start_gateway(sink_port, workers, directory)
            log = gateway_log if workers == 1 else log
            add(f"gateway, empty policy, {workers} {'worker' if workers == 1 else 'workers'}", gateway, port)
        add(CORE_LABEL, *start_core(sink_port, directory))
        for target in targets:  # warm-up (imports, pools, caches)
            fleet(target.port, min(200, args.messages), args.sessions, args.size)
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds}", flush=True)
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                one_round(target, args)
        for target in targets:
            target.fleet = fleet(target.port, args.latency_messages, args.sessions, args.size)
        stages = stage_medians(log)
    finally:
        for proc in processes:
            stop(proc)
        stop(sink)
        shutil.rmtree(directory, ignore_errors=True)
    section = report(targets, stages, args)
    print(section)
    if not args.no_write:
        write_docs(section)
        print(f"written to {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
