"""``gateway serve`` as a real process: --dev with swaks, workers, signals, restarts; ``gateway passwd``."""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from click.testing import CliRunner
from pypdf import PdfWriter

from gateway.cli import main
from gateway.config import LoggingConfig
from gateway.logging import configure_logging
from tests.support.client import RawClient, send
from tests.support.process import GATEWAY, GatewayProcess
from tests.support.servers import CaptureHop, SmtpSink

PRIVATE_BUYER = "buyer@example.org"  # the default profile: no marketplace rules in the way


def write_config(
    tmp_path: Path,
    upstream_port: int,
    *,
    workers: int = 1,
    extra: str = "",
    event_loop: str = "uvloop",
    listen: str = "127.0.0.1:0",
) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[server]
listen = "{listen}"
hostname = "gw.test"
workers = {workers}
shutdown_grace = 5.0
event_loop = "{event_loop}"
[[accounts]]
name = "helpdesk"
networks = ["127.0.0.0/8"]
senders = ["@seller.example"]
[upstreams.default]
host = "127.0.0.1"
port = {upstream_port}
tls = "none"
timeout = 10.0
{extra}
""",
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    return path


@pytest.fixture
def processes() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.stop()


def start(processes: list[GatewayProcess], tmp_path: Path, *args: str) -> GatewayProcess:
    process = GatewayProcess(*args, log_path=tmp_path / f"gateway-{len(processes)}.log")
    processes.append(process)
    return process.wait_started()


def swaks_data(transcript: str) -> bytes:
    """The DATA swaks sent, rebuilt from its transcript (" -> " lines between 354 and the dot)."""
    lines = transcript.splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("<-  354"))
    end = next(i for i in range(begin, len(lines)) if lines[i] == " -> .")
    return "".join(line[4:] + "\r\n" for line in lines[begin + 1 : end]).encode()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_dev_swaks_attachment_arrives_intact(processes: list[GatewayProcess], tmp_path: Path) -> None:
    """Swaks sends a PDF through serve --dev; the capture hop has it byte for byte under our Received header."""
    pdf = tmp_path / "manual.pdf"
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    with open(pdf, "wb") as handle:
        writer.write(handle)
    data_dir = tmp_path / "dev"
    gateway = start(
        processes, tmp_path, "--dev", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--capture-port", "0"
    )
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{gateway.port}", "--from", "support@seller.example",
         "--to", "0a1b2c3d4e5f@marketplace.amazon.de",
         "--header", "Subject: Re: question about the assembly",
         "--header", "In-Reply-To: <q-123@marketplace.amazon.de>",
         "--body", "Hello,\n\nthe assembly manual you asked for is attached.\n\nKind regards",
         "--attach-type", "application/pdf", "--attach-name", "manual.pdf", "--attach", f"@{pdf}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0 Ok: queued as" in result.stdout
    assert "held for review" not in result.stdout
    sent = swaks_data(result.stdout)
    [captured] = list((data_dir / "captured").glob("*.eml"))
    relayed = captured.read_bytes()
    assert relayed.endswith(sent)  # original headers and body, byte for byte
    trace = relayed[: len(relayed) - len(sent)]
    assert trace.startswith(b"Received: from ")
    assert b"by gateway.localhost (marketplace-mail-gateway) with ESMTP id " in trace
    assert trace.count(b"\r\n") == 3  # one folded header, nothing else added


@pytest.mark.parametrize(("event_loop", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")])
def test_event_loop_setting(
    processes: list[GatewayProcess], tmp_path: Path, capture: CaptureHop, event_loop: str, module: str
) -> None:
    """server.event_loop picks the workers' loop; both relay a message."""
    config = write_config(tmp_path, capture.port, event_loop=event_loop)
    gateway = start(processes, tmp_path, "--config", str(config))
    assert gateway.wait_for("worker_started")[0]["event_loop"] == module
    assert send("127.0.0.1", gateway.port, rcpts=(PRIVATE_BUYER,))[0] == 250
    assert len(capture.messages) == 1


def test_two_workers_both_serve(processes: list[GatewayProcess], tmp_path: Path, capture: CaptureHop) -> None:
    """With --workers 2 both processes accept connections on the one port (SO_REUSEPORT)."""
    gateway = start(processes, tmp_path, "--config", str(write_config(tmp_path, capture.port)), "--workers", "2")
    gateway.wait_for("worker_started", count=2)
    for _ in range(30):
        with RawClient("127.0.0.1", gateway.port) as client:
            assert client.greeting.startswith("220 gw.test")
            client.command("QUIT")
    opened = gateway.wait_for("connection_opened", count=30)
    assert {e["worker"] for e in opened} == {0, 1}
    assert send("127.0.0.1", gateway.port, rcpts=(PRIVATE_BUYER,))[0] == 250
    assert len(capture.messages) == 1


@pytest.mark.postfix
def test_sigterm_drains_in_flight_and_refuses_idle(processes: list[GatewayProcess], tmp_path: Path) -> None:
    """SIGTERM: the message being relayed gets its 250, an idle session 421 4.3.2, then the process exits 0."""
    sink = SmtpSink("-w", "2").start()  # the upstream takes 2 s to answer DATA
    try:
        gateway = start(processes, tmp_path, "--config", str(write_config(tmp_path, sink.port)))
        outcome: list[tuple[int, str]] = []
        sender = threading.Thread(
            target=lambda: outcome.append(send("127.0.0.1", gateway.port, rcpts=(PRIVATE_BUYER,)))
        )
        with RawClient("127.0.0.1", gateway.port) as idle:
            idle.command("EHLO idle.test")
            sender.start()
            gateway.wait_for("message_decided", count=0)
            time.sleep(0.8)  # the message is now waiting for the upstream
            gateway.signal(signal.SIGTERM)
            assert idle.reply() == "421 4.3.2 gw.test Service shutting down, try again later"
        sender.join(20)
        assert outcome
        assert outcome[0][0] == 250
        assert gateway.proc.wait(30) == 0
        with pytest.raises(ConnectionRefusedError):
            RawClient("127.0.0.1", gateway.port)
        time.sleep(0.2)
        assert len(sink.messages()) == 1
    finally:
        sink.stop()


def test_crashed_worker_is_restarted(processes: list[GatewayProcess], tmp_path: Path, capture: CaptureHop) -> None:
    """A worker killed with SIGKILL is replaced; the port keeps serving."""
    gateway = start(processes, tmp_path, "--config", str(write_config(tmp_path, capture.port)))
    [started] = gateway.wait_for("worker_started")
    subprocess.run(["kill", "-KILL", str(started["pid"])], check=True)
    gateway.wait_for("worker_exited")
    gateway.wait_for("worker_started", count=2)
    assert send("127.0.0.1", gateway.port, rcpts=(PRIVATE_BUYER,))[0] == 250


def test_sighup_reloads_policies(processes: list[GatewayProcess], tmp_path: Path, capture: CaptureHop) -> None:
    """SIGHUP reloads the policies in every worker; a broken override is refused and the running policy kept."""
    local = tmp_path / "local"
    (local / "rules").mkdir(parents=True)
    config = write_config(tmp_path, capture.port, workers=2, extra=f'[policy]\nlocal_path = "{local}"\n')
    gateway = start(processes, tmp_path, "--config", str(config))
    gateway.wait_for("worker_started", count=2)
    gateway.signal(signal.SIGHUP)
    gateway.wait_for("policy_reloaded", count=2)
    (local / "rules" / "broken.yaml").write_text("rules: [{id: 1, nonsense: [}\n", encoding="utf-8")
    gateway.signal(signal.SIGHUP)
    gateway.wait_for("policy_reload_failed", count=2)
    assert send("127.0.0.1", gateway.port, rcpts=(PRIVATE_BUYER,))[0] == 250


def test_console_address_in_use_is_a_clear_failure(tmp_path: Path, capture: CaptureHop) -> None:
    """If the admin console cannot listen, serve says so in one event and exits 1 (no traceback)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = write_config(tmp_path, capture.port)
        result = subprocess.run(
            [str(GATEWAY), "serve", "--config", str(config), "--admin-listen", f"127.0.0.1:{busy}"],
            capture_output=True,
            text=True,
            timeout=90,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    failed = [json.loads(line) for line in output.splitlines() if '"service_failed"' in line]
    assert [(e["service"], e["error"]) for e in failed] == [
        ("admin", f"admin could not start on 127.0.0.1:{busy} (uvicorn exit 3)")
    ]
    assert "Traceback" not in output
    assert '"server_stopped"' in output


def test_smtp_address_in_use_is_a_clear_failure(tmp_path: Path, capture: CaptureHop) -> None:
    """If the SMTP port is taken, serve logs listen_failed with the reason and exits 1 (no traceback)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = write_config(tmp_path, capture.port, listen=f"127.0.0.1:{busy}")
        result = subprocess.run(
            [str(GATEWAY), "serve", "--config", str(config), "--admin-listen", "127.0.0.1:0"],
            capture_output=True,
            text=True,
            timeout=90,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    failed = [json.loads(line) for line in output.splitlines() if '"listen_failed"' in line]
    assert [(e["listen"], e["error"]) for e in failed] == [(f"127.0.0.1:{busy}", "Address already in use")]
    assert "Traceback" not in output


def test_serve_needs_config_or_dev() -> None:
    """Neither --config nor --dev (or both) is a usage error, exit status 2."""
    assert CliRunner().invoke(main, ["serve"]).exit_code == 2
    assert CliRunner().invoke(main, ["serve", "--dev", "--config", "x.toml"]).exit_code == 2


def test_serve_bad_config_names_the_key(tmp_path: Path) -> None:
    """An invalid configuration stops serve before anything starts, naming the key."""
    path = tmp_path / "bad.toml"
    path.write_text('[upstreams.default]\nhost = "x"\n[server]\nmax_conections = 3\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "server.max_conections: unknown key" in result.output


def test_passwd_prompts_twice() -> None:
    """`gateway passwd` asks twice and prints an argon2id hash of the password."""
    result = CliRunner().invoke(main, ["passwd"], input="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0, result.output
    digest = result.output.strip().splitlines()[-1]
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, "s3cret pass")


def test_passwd_mismatch_asks_again() -> None:
    """Two different answers are not accepted; the prompt repeats."""
    result = CliRunner().invoke(main, ["passwd"], input="one\ntwo\nthree\nthree\n")
    assert result.exit_code == 0
    assert "do not match" in result.output.lower()
    assert PasswordHasher().verify(result.output.strip().splitlines()[-1], "three")


def test_passwd_stdin() -> None:
    """`gateway passwd --stdin` reads one line, for scripts; an empty one is refused."""
    ok = CliRunner().invoke(main, ["passwd", "--stdin"], input="from a script\n")
    assert ok.exit_code == 0
    assert PasswordHasher().verify(ok.output.strip(), "from a script")
    empty = CliRunner().invoke(main, ["passwd", "--stdin"], input="\n")
    assert empty.exit_code == 2


def test_console_and_json_renderers() -> None:
    """JSON by default, a console renderer for --dev (configure_logging honours both)."""
    out = io.StringIO()
    try:
        configure_logging(LoggingConfig(), stream=out)
        structlog.get_logger("t").info("thing_happened", answer=42)
        configure_logging(LoggingConfig(), console=True, stream=out)
        structlog.get_logger("t").info("other_thing_happened", answer=43)
    finally:
        structlog.reset_defaults()
    first, second = out.getvalue().splitlines()[:2]
    assert json.loads(first) == {**json.loads(first), "event": "thing_happened", "answer": 42, "level": "info"}
    assert list(json.loads(first))[:3] == ["timestamp", "level", "event"]
    assert not second.startswith("{")
    assert "other_thing_happened" in second
    assert "answer=43" in second
