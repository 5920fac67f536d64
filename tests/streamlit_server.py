"""Start the real app under `streamlit run` with a chosen environment and working directory, for the
browser tests that need a server of their own (the session-wide one lives in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_app(env: dict[str, str], log_dir: Path, *, cwd: Path = ROOT, address: str | None = "127.0.0.1",
                  port: int | None = None, script: Path = ROOT / "app.py") -> Iterator[str]:
    """Yields the app's URL once `/_stcore/health` answers; stops the process (by its own PID) after.
    `address=None` passes no --server.address, to see what the app binds to on its own. `script` is the
    page to serve (a test page under tests/apps/, say); app.py by default."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "STREAMLIT_"))}
    full_env.update(env)
    args = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
            "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    if address is not None:
        args += ["--server.address", address]
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "streamlit.log", "w") as log:
        proc = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # readiness check, not a fixed sleep
                try:
                    if requests.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log.name}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
