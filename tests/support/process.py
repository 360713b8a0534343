"""``gateway serve`` as a real process, its output captured in a file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GATEWAY = Path(sys.executable).parent / "gateway"
# JSON ("event": "server_started", ..., "listen": "127.0.0.1:N") or console (server_started ... listen=127.0.0.1:N).
_LISTEN = re.compile(r"server_started\b.*?listen[\"=:\s]+\"?127\.0\.0\.1:(\d+)")


class GatewayProcess:
    """Runs ``gateway serve ARGS``; ``port`` is read from its ``server_started`` event.

    The admin console listens on a free port unless ARGS say otherwise, so tests
    never fight over the fixed 127.0.0.1:8025 of ``--dev`` (nor with a gateway a
    developer runs on the same machine).
    """

    def __init__(self, *args: str, log_path: Path) -> None:
        if not any(a.startswith("--admin-listen") for a in args):
            args = (*args, "--admin-listen", "127.0.0.1:0")
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([str(GATEWAY), "serve", *args], stdout=self._log, stderr=subprocess.STDOUT)
        self.port = 0

    def wait_started(self, timeout: float = 90.0) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTEN.search(self.output())
            if match:
                self.port = int(match.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not start:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (non-JSON lines are skipped)."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def wait_for(self, event: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [e for e in self.events() if e.get("event") == event]
            if len(matching) >= count:
                return matching
            time.sleep(0.1)
        raise AssertionError(f"{count} x {event} not logged:\n{self.output()[-4000:]}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
