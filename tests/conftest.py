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

    handle = start_emulator(host="127.0.0.1", port=0, speed=TEST_SPEED, seed=1, allow_faults=True,
                             rate_limits=False)
    yield handle
    handle.stop()


@pytest.fixture
def own_emulator():
    """A private emulator for tests that change its settings or clock, started lazily with options
    (`own_emulator(lenient_gateways=True)`); stopped after the test."""
    from cfai.emulator import start_emulator

    handles = []

    def start(**options):
        options = {"speed": TEST_SPEED, "seed": 1, "allow_faults": True, **options}
        handle = start_emulator(host="127.0.0.1", port=0, **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def session():
    """A keep-alive requests.Session for tests that talk raw HTTP to the emulator."""
    import requests

    with requests.Session() as s:
        yield s


@pytest.fixture
def store(tmp_path):
    """A run history in the test's own folder."""
    from cfai.store import Store

    s = Store(tmp_path / "history.sqlite3")
    yield s
    s.close()


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


# --- The app: AppTest in-process, and `streamlit run` for the browser ----------------------------------
@pytest.fixture
def app_env(emulator, monkeypatch, tmp_path):
    """Local mode against the session emulator (fast, faults allowed); history stored under tmp_path."""
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_GATEWAY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFAI_EMULATOR_URL", emulator.base_url)
    monkeypatch.setenv("CFAI_DATA_DIR", str(tmp_path / "data"))
    return emulator


@pytest.fixture(autouse=True)
def _apptest_uses_st_navigation(monkeypatch):
    """Keep Streamlit's legacy pages-directory mode off while AppTest runs.

    Under `streamlit run`, st.navigation in app.py turns that mode off for the process. AppTest (Streamlit
    1.67) resets the flag to None before every run, and PagesManager then re-detects our pages/ folder and
    runs a switched-to page without app.py (no connection sidebar, no emulator). Pinning the flag to False
    gives AppTest what the browser gets. The folder keeps the name the specification gives it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original_init = PagesManager.__init__

    def init_without_pages_directory(self, *args, **kwargs):
        PagesManager.uses_pages_directory = False
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(PagesManager, "__init__", init_without_pages_directory)


@pytest.fixture
def app(app_env):
    """An AppTest of app.py, already run once. Switch pages with `app.switch_page("pages/x.py").run()`."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="session")
def streamlit_url(emulator, tmp_path_factory) -> Iterator[str]:
    """The real app under `streamlit run`, in local mode against the session emulator."""
    from tests.streamlit_server import streamlit_app

    env = {"CFAI_EMULATOR_URL": emulator.base_url, "CFAI_DATA_DIR": str(tmp_path_factory.mktemp("appdata"))}
    with streamlit_app(env, tmp_path_factory.mktemp("streamlit")) as url:
        yield url
