"""Shared fixtures: one fast emulator on loopback for the whole session, connections and clients to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cfai.config import Connection, local_connection

ROOT = Path(__file__).resolve().parent.parent
# Tests run the simulated models this many times faster than the realistic default.
TEST_SPEED = float(os.environ.get("CFAI_TEST_SPEED", "50"))


@pytest.fixture(scope="session")
def emulator():
    from cfai.emulator import start_emulator

    handle = start_emulator(host="127.0.0.1", port=0, speed=TEST_SPEED, seed=1, allow_faults=True)
    yield handle
    handle.stop()


@pytest.fixture
def local_conn(emulator) -> Connection:
    return local_connection(emulator.base_url)


@pytest.fixture
def client(local_conn) -> Iterator:
    from cfai.client import Client

    c = Client(local_conn)
    yield c
    c.close()


# --- Playwright with Debian's Chromium (pytest-playwright cannot find it by channel) ---------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }
