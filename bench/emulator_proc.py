"""The emulator as a child process (`python -m cfai.emulator --port 0`), for measurements.

A separate process keeps the server's work off the measuring process's GIL: with the emulator in-process,
every request's server half competes with the client loop for one interpreter lock, and the client's timings
then include waits for the lock that have nothing to do with the client (see `bench/__main__.py`).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on (http://\S+)")


class EmulatorProcess:
    """`python -m cfai.emulator --port 0 <args>`; `.base_url` once ready, `.pid`, `.rss_mb()`, `.stop()`."""

    def __init__(self, *args: str, python: str = sys.executable):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [python, "-m", "cfai.emulator", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.pid = self.proc.pid
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name=f"emulator-{self.pid}-out", daemon=True).start()
        try:
            self.base_url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def _pump(self) -> None:
        # Drain stdout for the whole life of the child, so a chatty server never blocks on a full pipe.
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self) -> str:
        """The readiness check: the server prints its URL only once its socket accepts connections."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError("the emulator exited during startup:\n" + "\n".join(self.output[-20:]))
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        raise RuntimeError(f"the emulator did not report readiness within {STARTUP_TIMEOUT_S:.0f} s")

    def rss_mb(self) -> float:
        """Resident set size of the child, from /proc/<pid>/status (Linux)."""
        return read_rss_mb(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server stops cleanly on SIGTERM
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def read_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"no VmRSS for pid {pid}")
