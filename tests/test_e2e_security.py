"""Issue 10 (1-3) and issue 13.12 in headless Chromium against `streamlit run`.

- The server's token (a canary in the server's environment) never reaches a base URL a session typed in:
  catalogue fetch, Verify and chat go there only with the session's own token.
- Markdown in model output and user text loads no remote image: a 127.0.0.1 server stands in for the
  remote host, and every request the page makes is watched.
- Started from another folder, the app listens on loopback only.
- `/playground` opens the playground; the first load says where answers come from.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.recording_proxy import RecordingProxy
from tests.streamlit_server import ROOT, streamlit_app
from tests.test_secret_safety import find_leaks

CANARY = "cfai-e2e-canary-" + secrets.token_hex(10)
OWN_TOKEN = "session-token-" + secrets.token_hex(6)
ACCOUNT = "0123456789abcdef0123456789abcdef"


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def fill(page: Page, label: str, value: str) -> None:
    box = sidebar(page).get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")  # commits the text input (and waits for no blur race with a rerun)


@pytest.mark.e2e
def test_the_server_token_never_goes_to_a_base_url_the_session_typed(page: Page, tmp_path: Path):
    from cfai.emulator import start_emulator

    with start_emulator(port=0, speed=50, api_token=CANARY) as home, start_emulator(port=0, speed=50) as open_emu, \
            RecordingProxy("elsewhere", open_emu.base_url) as elsewhere:
        env = {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": CANARY, "CLOUDFLARE_GATEWAY_ID": "demo",
               "CLOUDFLARE_GATEWAY_TOKEN": CANARY, "CLOUDFLARE_API_BASE_URL": f"{home.base_url}/client/v4",
               "CLOUDFLARE_GATEWAY_BASE_URL": f"{home.base_url}/v1", "CFAI_DATA_DIR": str(tmp_path / "data")}
        with streamlit_app(env, tmp_path) as url:
            page.set_viewport_size({"width": 1440, "height": 900})
            page.goto(url)
            verify = sidebar(page).get_by_role("button", name="Verify token")
            expect(verify).to_be_enabled(timeout=30_000)
            verify.click()  # the server's token at the server's base: accepted (so the canary is live)
            expect(sidebar(page).get_by_text("Token is active (the server's token")).to_be_visible(timeout=15_000)

            sidebar(page).get_by_text("Advanced", exact=True).first.click()  # the connection panel's
            expect(sidebar(page).get_by_text("A token set on the server goes only to the base URLs")).to_be_visible()
            fill(page, "API base URL", f"{elsewhere.base_url}/client/v4")
            fill(page, "Gateway base URL", f"{elsewhere.base_url}/v1")
            expect(sidebar(page).get_by_text("not sent there: enter a token for this session").first).to_be_visible(
                timeout=15_000)
            expect(verify).to_be_disabled()
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_disabled()
            assert elsewhere.requests == [], "nothing goes out before the session has a token"

            expect(sidebar(page).get_by_text("To use Cloudflare, enter an API token.")).to_be_visible()
            fill(page, "API token", OWN_TOKEN)
            expect(verify).to_be_enabled(timeout=15_000)
            verify.click()
            expect(sidebar(page).get_by_text("Token is active (the token you typed")).to_be_visible(timeout=15_000)
            box = page.get_by_test_id("stChatInputTextArea")
            box.fill("Hello from a session with its own base URL")
            box.press("Enter")
            expect(page.get_by_test_id("stChatMessage")).to_have_count(2, timeout=30_000)
            expect(page.get_by_test_id("stChatMessage").nth(1)).to_contain_text("HTTP 200", timeout=30_000)

    paths = [r["path"] for r in elsewhere.requests]
    assert any("/ai/models/search" in p for p in paths), "the catalogue came from the session's base"
    assert any(p.endswith("/user/tokens/verify") for p in paths), "Verify went there"
    assert any("/ai/" in p and "models" not in p for p in paths), "the chat went there"
    assert all(r["authorization"] == f"Bearer {OWN_TOKEN}" for r in elsewhere.requests), elsewhere.requests
    assert not find_leaks({"requests to the session's base": elsewhere.everything()})


# --- remote images -------------------------------------------------------------------------------------------
def hostile_answer(remote: str) -> str:
    return "\n".join([
        "Here is your answer with **bold**, a list and code:",
        "", "- one", "- two", "",
        "```python", "print('kept <code>')", "```", "",
        f"![inline]({remote}/inline.png?q=the-conversation)",
        f'<img src="{remote}/html.png">',
        "![reference][pic]", "",
        f"[pic]: {remote}/reference.png", "",
        f"<{remote}/autolink.png>",
        f"[![badge]({remote}/badge.png)]({remote}/page)",
    ])


class HostileModel:
    """An OpenAI-compatible server (the emulator's upstream) whose answers try to load remote images."""

    def __init__(self, answer: str):
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if body.get("stream"):
                    words = re.findall(r"\S+\s*|\s+", answer)
                    events = [{"choices": [{"delta": {"content": w}}]} for w in words]
                    events.append({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": len(words)}})
                    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                    content_type = "text/event-stream"
                else:
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer},
                                                    "finish_reason": "stop"}],
                                       "usage": {"prompt_tokens": 5, "completion_tokens": 40}})
                    content_type = "application/json"
                raw = data.encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        del model

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.e2e
def test_markdown_in_answers_and_prompts_loads_no_remote_image(page: Page, tmp_path: Path):
    from cfai.emulator import start_emulator

    with RecordingProxy("remote-image-host") as remote:
        model = HostileModel(hostile_answer(remote.base_url))
        try:
            with start_emulator(port=0, speed=50, upstream_openai=model.base_url) as emu, \
                    streamlit_app({"CFAI_EMULATOR_URL": emu.base_url, "CFAI_DATA_DIR": str(tmp_path / "data")},
                                  tmp_path) as url:
                remote_port = f":{remote.port}"
                page_requests: list[str] = []
                page.on("request", lambda request: page_requests.append(request.url))
                page.set_viewport_size({"width": 1440, "height": 900})
                page.goto(url)
                box = page.get_by_test_id("stChatInputTextArea")
                expect(box).to_be_visible(timeout=30_000)
                box.fill(f"Describe ![mine]({remote.base_url}/user.png) and <img src={remote.base_url}/user2.png>")
                box.press("Enter")
                messages = page.get_by_test_id("stChatMessage")
                expect(messages).to_have_count(2, timeout=30_000)
                answer = messages.nth(1)
                expect(answer).to_contain_text("HTTP 200", timeout=30_000)  # the turn is recorded and redrawn
                expect(answer).to_contain_text("🖼 inline")
                expect(answer.locator(f'a[href="{remote.base_url}/inline.png?q=the-conversation"]')).to_have_count(1)
                expect(answer).to_contain_text('<img src="')  # raw HTML shown as text
                expect(answer.locator("pre code").first).to_contain_text("print('kept <code>')")
                expect(answer.locator("li")).to_have_count(2)
                expect(answer.locator("strong").first).to_have_text("bold")
                expect(messages.nth(0)).to_contain_text("🖼 mine")
                assert page.locator(f'img[src*="{remote_port}"]').count() == 0
                page.wait_for_load_state("networkidle")
        finally:
            model.stop()
    assert not [u for u in page_requests if remote_port in u], page_requests
    assert remote.requests == [], "nothing reached the stand-in remote host"


# --- network binding ---------------------------------------------------------------------------------------
def listening_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on `port`, from /proc/net/tcp and tcp6 (hex, little-endian)."""
    found = []
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(name).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:
                words = [bytes.fromhex(address[i:i + 8])[::-1].hex() for i in range(0, width, 8)]
                found.append("".join(words))
    return found


LOOPBACK_HEX = {"7f000001", "00000000000000000000000000000001", "00000000000000000000ffff7f000001"}


@pytest.mark.e2e
def test_started_from_another_folder_the_app_listens_on_loopback_only(tmp_path: Path):
    from tests.streamlit_server import free_port

    port = free_port()
    elsewhere = tmp_path / "another-folder"
    elsewhere.mkdir()
    with streamlit_app({"CFAI_DATA_DIR": str(tmp_path / "data")}, tmp_path, cwd=elsewhere, address=None, port=port):
        addresses = listening_addresses(port)
    assert addresses, "the app's listening socket was found"
    assert all(a in LOOPBACK_HEX or a.startswith("7f") for a in addresses), addresses


def test_make_run_passes_localhost_unless_told_otherwise():
    def run_line(**env: str) -> str:
        out = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                             env={"PATH": "/usr/bin:/bin", **env}).stdout
        return out.replace("\\\n", " ")

    assert "--server.address localhost" in run_line()
    assert "--server.address 0.0.0.0" in run_line(STREAMLIT_SERVER_ADDRESS="0.0.0.0")


# --- first load and deep links --------------------------------------------------------------------------------
@pytest.mark.e2e
def test_playground_deep_link_and_first_load_notice(page: Page, streamlit_url: str):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(streamlit_url)
    notice = page.get_by_text("Answers come from the local emulator")
    expect(notice).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_count(0)
    for path, title in (("/classify", "Classify"), ("/playground", "Playground")):  # the server knows the pages
        page.goto(streamlit_url + path)
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
