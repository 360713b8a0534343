"""A private Postfix instance under a temporary directory (nothing under /etc is touched).

Built from the Debian package's main.cf/master.cf plus the gateway's shipped
snippets in ``deploy/postfix/``, with every port moved to a free loopback one,
as research/test-material.md describes. Started with ``postfix start-fg`` and
``maillog_file = /dev/stdout`` (with plain ``start``, postlogd can deadlock).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import free_port, wait_for_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "postfix"


class PrivatePostfix:
    """Postfix on a free port, filtering through ``filter_port``, re-injection on ``reinject_port``.

    Delivery goes to ``relayhost_port``.
    """

    def __init__(self, *, relayhost_port: int, filter_port: int, reinject_port: int, mode: str = "after-queue") -> None:
        # Postfix runs parts of itself as the postfix user: a world-readable base.
        self.base = Path(tempfile.mkdtemp(prefix="postfix-"))
        self.base.chmod(0o755)
        self.etc = self.base / "etc"
        self.smtp_port = free_port()
        self.reinject_port = reinject_port
        self.relayhost_port = relayhost_port
        self.filter_port = filter_port
        self.mode = mode
        self.log_path = self.base / "maillog"
        self._proc: subprocess.Popen[bytes] | None = None

    def _postconf(self, *args: str) -> None:
        subprocess.run(["postconf", "-c", str(self.etc), *args], check=True, capture_output=True)

    def configure(self) -> None:
        self.etc.mkdir()
        for name in ("main.cf", "master.cf", "dynamicmaps.cf"):
            if Path("/etc/postfix", name).exists():
                shutil.copy(Path("/etc/postfix", name), self.etc / name)
        # Debian's "No configuration" install has no main.cf (its main.cf.proto leaves
        # setgid_group and friends empty, which "postfix check" refuses): the compiled-in
        # defaults plus the settings below are enough. postconf needs the file to exist.
        (self.etc / "main.cf").touch()
        settings = {
            "queue_directory": str(self.base / "queue"),
            "data_directory": str(self.base / "data"),
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.relayhost_port}",
            "smtp_dns_support_level": "disabled",
            "maillog_file": "/dev/stdout",
            "alias_maps": "",
            "alias_database": "",
            "compatibility_level": "3.6",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_tls_security_level": "none",
            "bounce_queue_lifetime": "1h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        if self.mode == "after-queue":
            for line in (DEPLOY / "main.cf.after-queue").read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    settings[key.strip()] = value.strip().replace("10025", str(self.filter_port))
        self._postconf("-e", *(f"{k}={v}" for k, v in settings.items()))
        master = (self.etc / "master.cf").read_text()
        snippet = (DEPLOY / f"master.cf.{self.mode}").read_text()
        snippet = snippet.replace("10026", str(self.reinject_port)).replace("10025", str(self.filter_port))
        if self.mode == "after-queue":
            master = re.sub(r"(?m)^smtp(\s+inet\s)", rf"127.0.0.1:{self.smtp_port}\1", master)
        else:
            master = re.sub(r"(?m)^smtp\s+inet\s.*$", "", master)
            snippet = re.sub(r"(?m)^587(\s+inet\s)", rf"127.0.0.1:{self.smtp_port}\1", snippet)
        (self.etc / "master.cf").write_text(master + "\n" + snippet)
        self._postconf("-F", "*/*/chroot = n")

    def start(self) -> PrivatePostfix:
        self.configure()
        (self.base / "queue").mkdir()
        (self.base / "data").mkdir()
        shutil.chown(self.base / "data", "postfix")
        # "postfix check" creates the queue's subdirectories with their owners.
        checked = subprocess.run(["postfix", "-c", str(self.etc), "check"], capture_output=True, text=True)
        if checked.returncode:
            raise RuntimeError(f"postfix check failed: {checked.stderr.strip()} {checked.stdout.strip()}")
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                ["postfix", "-c", str(self.etc), "start-fg"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MAIL_CONFIG": str(self.etc)},
            )
        wait_for_port(self.smtp_port, timeout=30)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self._proc is not None:
            subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, check=False)
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        with contextlib.suppress(Exception):
            shutil.rmtree(self.base)


def wait_until(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.1)
    return False
