"""Fault matrix (issue 7, item 2): every failure a user can meet, at the client and on each page.

(a) Client: one table, one row per failure, on both routes where the failure exists there. Each gives its
typed error with the HTTP status, the Cloudflare code, a message and the plain-language hint, read from the
error shape the server used (`errors`, or the gateway's `error`). Real HTTP against the emulator: its fault
headers, its token and account checks, gateways configured through its management API, and a closed port.

(b) Pages (AppTest): each page shows the failures it can reach as an error element carrying the hint (no
traceback), and keeps what the user typed. Local mode drives the pages' own fault injection; Cloudflare mode
points the app (env vars) at an emulator that checks the token and the account id like Cloudflare.
Already in test_page_playground.py, so not repeated: the playground's non-streamed 429 and 500 (with Retry),
its dropped stream, read timeout, bad token and typed unknown model; in test_page_classify.py the batch's 500s
being kept and retried; in test_page_compare.py the direct route's unknown model.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import cfai.errors as errors_module
from cfai.chat import error_summary
from cfai.chat.export import CHAT_RATE_LIMIT_HINT, DEADLINE_HINT, READ_TIMEOUT_HINT, SERVER_TIMEOUT_HINT
from cfai.client import Client, Result, Route
from cfai.config import Connection
from cfai.errors import (
    AuthenticationError,
    BadInputError,
    CloudflareError,
    ConnectionDroppedError,
    DeadlineExceededError,
    GatewayAuthError,
    InvalidRequestError,
    MalformedResponseError,
    ModelNotFoundError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    RedirectError,
    RequestTimeoutError,
    RequestTooLargeError,
    ResponseTooLargeError,
    ServerError,
    StreamInterruptedError,
)
from cfai.faults import FAULT_HEADER

ROOT = Path(__file__).resolve().parent.parent
LLM = "@cf/meta/llama-3.1-8b-instruct"
SST2 = "@cf/huggingface/distilbert-sst-2-int8"
UNKNOWN_MODEL = "@cf/nobody/no-such-model"
TOKEN = "fault-matrix-right-token"
ACCOUNT = "0123456789abcdef0123456789abcdef"
AUTH_GATEWAY, LIMITED_GATEWAY, OPEN_GATEWAY = "fm-authenticated", "fm-rate-limited", "fm-open"
TOO_LARGE = 10 * 1024 * 1024 + 1  # one byte over Workers AI's 10 MB request limit
BOTH: tuple[Route, ...] = ("direct", "gateway")


def expected_hint(error: type[CloudflareError]) -> str:
    """The hint each row's error shows: the type's own, except a 2009, whose hint names the token that was
    refused (here always a wrong gateway token) and the fixes (cfai.errors.gateway_auth_hint)."""
    if error is GatewayAuthError:
        from cfai.errors import gateway_auth_hint

        return gateway_auth_hint("gateway_token", "gateway", AUTH_GATEWAY)
    return error.default_hint


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def locked() -> Iterator:
    """An emulator that checks the bearer token and the account id as Cloudflare does, faults allowed, with
    an authenticated gateway and a rate-limited one whose limit is already used up."""
    from cfai.emulator import start_emulator

    handle = start_emulator(port=0, speed=50, api_token=TOKEN, allow_faults=True, strict_accounts=True)
    admin = f"{handle.base_url}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # Only `default` is created on first use (as on Cloudflare): the open gateway is created here too.
    for settings in ({"id": OPEN_GATEWAY}, {"id": AUTH_GATEWAY, "authentication": True},
                     {"id": LIMITED_GATEWAY, "rate_limiting_limit": 1, "rate_limiting_interval": 3600}):
        response = requests.post(admin, json=settings, headers=auth, timeout=5)
        assert response.status_code == 200, response.text
    with Client(connection(handle, gateway_id=LIMITED_GATEWAY)) as c:
        assert c.run(SST2, {"text": "use up the limit"}, route="gateway").ok
    yield handle
    handle.stop()


def connection(emulator, **changes) -> Connection:
    base = emulator.base_url
    values = dict(mode="cloudflare", account_id=ACCOUNT, api_token=TOKEN, gateway_id=OPEN_GATEWAY,
                  api_base_url=f"{base}/client/v4", gateway_base_url=f"{base}/v1")
    return Connection(**{**values, **changes})


# --- (a) the client ----------------------------------------------------------------------------------------
def _fault(kind: str) -> dict[str, str]:
    return {FAULT_HEADER: kind}


def _run(emulator, route: Route, model: str = SST2, body: dict | None = None, headers: dict | None = None,
         timeout: tuple[float, float] | None = None, **changes) -> Result:
    with Client(connection(emulator, **changes)) as c:
        return c.run(model, body or {"text": "fault matrix"}, route=route, extra_headers=headers, timeout=timeout)


def _dropped_stream(emulator, route: Route) -> Result:
    with Client(connection(emulator)) as c:
        return c.stream(LLM, {"prompt": "a long answer please", "max_tokens": 64}, route=route,
                        extra_headers=_fault("drop-stream")).drain()


def _hostile(route: Route, mode: str) -> Result:
    """What the emulator never does (redirect, endless body): a misbehaving loopback server."""
    from tests.hostile_server import HostileServer

    with HostileServer(mode) as server, Client(Connection(
            mode="cloudflare", account_id=ACCOUNT, api_token=TOKEN, gateway_id=OPEN_GATEWAY,
            api_base_url=f"{server.base_url}/client/v4", gateway_base_url=f"{server.base_url}/v1")) as c:
        return c.run(SST2, {"text": "fault matrix"}, route=route, deadline=20)


@dataclass(frozen=True)
class Row:
    id: str
    routes: tuple[Route, ...]
    provoke: Callable[..., Result]  # (emulator, route) -> the failed Result
    error: type[CloudflareError]
    status: int  # 0: no response arrived
    code: int | None  # the Cloudflare code
    message: str  # part of the message the user sees
    shape: str | None = None  # the error list's key in the body: "errors" (Workers AI) or "error" (gateway)
    retry_after: bool = False


ROWS = [
    Row("bad-input", BOTH, lambda e, r: _run(e, r, LLM, {"prompt": 5}),
        BadInputError, 400, 5006, "Bad input", "errors"),
    Row("bad-token", BOTH, lambda e, r: _run(e, r, api_token="not-the-token"),
        AuthenticationError, 401, 10000, "Authentication error", "errors"),
    Row("wrong-account-7003", ("direct",), lambda e, r: _run(e, r, account_id="0000"),
        NotFoundError, 404, 7003, "Could not route to", "errors"),
    Row("no-route-7000", ("direct",), lambda e, r: _run(e, r, api_base_url=f"{e.base_url}/client/v4/nowhere"),
        NotFoundError, 404, 7000, "No route for that URI", "errors"),
    Row("unknown-model-5007", BOTH, lambda e, r: _run(e, r, UNKNOWN_MODEL),
        ModelNotFoundError, 400, 5007, "No such model", "errors"),
    Row("too-large-413", BOTH, lambda e, r: _run(e, r, body={"text": "x" * TOO_LARGE}),
        RequestTooLargeError, 413, 3006, "too large", "errors"),
    Row("rate-limited-workers-ai", BOTH, lambda e, r: _run(e, r, headers=_fault("429")),
        RateLimitError, 429, 3040, "Capacity", "errors", retry_after=True),
    Row("rate-limited-gateway-2003", ("gateway",), lambda e, r: _run(e, r, gateway_id=LIMITED_GATEWAY),
        RateLimitError, 429, 2003, "Rate limited", "error", retry_after=True),
    Row("server-error-500", BOTH, lambda e, r: _run(e, r, headers=_fault("500")),
        ServerError, 500, 5000, "Internal server error", "errors"),
    Row("unavailable-503", BOTH, lambda e, r: _run(e, r, headers=_fault("503")),
        ServerError, 503, 3040, "temporarily unavailable", "errors"),
    # A slow answer (2 s) rather than the `timeout` fault's 30 s stall, so nothing outlives the test.
    Row("read-timeout", BOTH, lambda e, r: _run(e, r, headers={"x-emulator-delay-ms": "2000"}, timeout=(2, 0.3)),
        RequestTimeoutError, 0, None, "within the read timeout"),
    Row("connection-refused", BOTH, lambda e, r: _run(e, r, api_base_url=f"http://127.0.0.1:{closed_port()}/client/v4",
                                                      gateway_base_url=f"http://127.0.0.1:{closed_port()}/v1"),
        NetworkError, 0, None, "connection refused"),
    Row("body-dropped", ("direct",), lambda e, r: _run(e, r, headers=_fault("drop-stream")),
        ConnectionDroppedError, 200, None, "before the whole response arrived"),
    # Through the gateway the same cut is the gateway's to report: a 502 (see the emulator's gateway tests).
    Row("stream-dropped", BOTH, _dropped_stream, StreamInterruptedError, 200, None, "stream"),
    Row("malformed-json", BOTH, lambda e, r: _run(e, r, headers=_fault("malformed-json")),
        MalformedResponseError, 200, None, "not valid JSON"),
    Row("deadline", BOTH, lambda e, r: _run(e, r, headers={"x-emulator-delay-ms": "2000"}, timeout=0.5),
        DeadlineExceededError, 0, None, "0.5 s deadline"),
    Row("unsendable-header", BOTH, lambda e, r: _run(e, r, headers={"x-note": "two\nlines"}),
        InvalidRequestError, 0, None, "contains a line break"),
    Row("redirect-302", BOTH, lambda e, r: _hostile(r, "redirect:302"),
        RedirectError, 302, None, "redirected to https://elsewhere.example/client/v4, not followed"),
    Row("body-too-large", BOTH, lambda e, r: _hostile(r, "endless"),
        ResponseTooLargeError, 200, None, "larger than 32 MiB"),
    # Without a gateway token the API token goes as cf-aig-authorization (and is accepted): a wrong one is refused.
    Row("gateway-unauthorized-2009", ("gateway",),
        lambda e, r: _run(e, r, gateway_id=AUTH_GATEWAY, gateway_token="not-the-gateway-token"),
        GatewayAuthError, 401, 2009, "Unauthorized", "error"),
]


@pytest.mark.parametrize(("row", "route"), [pytest.param(row, route, id=f"{row.id}-{route}")
                                            for row in ROWS for route in row.routes])
def test_client_gives_the_typed_error(locked, row: Row, route: Route):
    result = row.provoke(locked, route)
    err = result.error
    assert not result.ok and type(err) is row.error, f"{type(err).__name__}: {err}"
    assert (err.status, err.code) == (row.status, row.code)
    assert row.message.lower() in err.message.lower(), err.message
    assert err.hint == expected_hint(row.error) and err.kind == row.error.kind
    assert (err.retry_after is not None and err.retry_after >= 1) == row.retry_after
    if row.shape is not None:  # the client read the shape this server used
        assert row.shape in json.loads(result.raw_body)
    assert TOKEN not in str(err) and TOKEN not in result.raw_body
    with pytest.raises(row.error):
        result.raise_for_error()


def test_the_table_covers_every_error_type():
    every = {cls for cls in vars(errors_module).values()
             if isinstance(cls, type) and issubclass(cls, CloudflareError) and cls is not CloudflareError}
    assert {row.error for row in ROWS} == every


# --- (b) the pages -------------------------------------------------------------------------------------------
PROMPT = "Please keep this prompt"
TEXT = "Please keep this text"
LINES = "first row to keep\nsecond row to keep"
COMPARE_PROMPT = "Please keep this comparison prompt"


CHAT_HINTS = {"rate_limited": (CHAT_RATE_LIMIT_HINT,), "deadline": (DEADLINE_HINT,),
              "timeout": (READ_TIMEOUT_HINT, SERVER_TIMEOUT_HINT.split("(")[0])}


def assert_clear_message(at, error: type[CloudflareError], step: str, marker: str = "") -> None:
    """An error element with the hint (and the step's own `marker`, so an earlier step's error on the same page
    does not count); no exception element and no traceback in any text."""
    assert not at.exception, f"{step}: {at.exception}"
    # Server text is shown Markdown-escaped (cfai.safe_markdown); compare what a person reads.
    shown = [re.sub(r"\\([^A-Za-z0-9\s])", r"\1", e.value) for e in at.error]
    # The playground words its own advice for a chat (one request: no concurrency; which timeout fired); a
    # failure kept without its error object (a batch row) shows its kind's default hint.
    hints = (expected_hint(error), error.default_hint, *CHAT_HINTS.get(error.kind, ()))
    assert any(any(h in text for h in hints) and marker in text for text in shown), \
        f"{step}: no hint of {error.__name__} in {shown}"
    everything = " ".join(e.value for kind in ("error", "warning", "markdown", "caption") for e in getattr(at, kind))
    assert "Traceback" not in everything, step


# Each step drives a page, asserts the user's input is kept, and returns a marker of its own error message.
def playground(at, route: Route, fault: str | None = None, stream: bool = True) -> str:
    at.switch_page("pages/playground.py").run()
    at.radio(key="pg_route").set_value(route)
    at.toggle(key="pg_stream").set_value(stream)
    if fault:
        at.selectbox(key="pg_fault").set_value(fault)
    at.run()
    at.chat_input(key="pg_input").set_value(PROMPT).run()
    turns = at.session_state["pg_conv"].turns
    assert at.chat_message[0].markdown[0].value == PROMPT and turns[0].content == PROMPT, "the prompt is kept"
    failed = turns[-1]
    assert failed.role == "user" and failed.failed and failed.error, "the failure is recorded with the turn"
    return error_summary(failed.error)  # the chat shows this turn's own error in bold, then the hint


def classify_single(at, route: Route, text: str = TEXT) -> str:
    at.switch_page("pages/classify.py").run()
    at.radio(key="classify_route").set_value(route).run()
    at.text_area(key="classify_text").set_value(text).run()
    at.button(key="classify_one").click().run()
    assert at.text_area(key="classify_text").value == text, "the text is kept"
    answer = at.session_state["classify_single"]
    assert answer.error and not answer.scores
    return answer.error  # the panel shows this answer's own error above the hint


def classify_batch(at, route: Route, fault: str | None = None) -> str:
    at.session_state["classify_tab"] = "Batch"  # the page draws only its open tab
    at.switch_page("pages/classify.py").run()
    at.radio(key="classify_route").set_value(route)
    at.radio(key="classify_source").set_value("Paste lines").run()
    at.text_area(key="classify_lines").set_value(LINES).run()
    if fault:
        at.number_input(key="classify_fault_every").set_value(1)
        at.selectbox(key="classify_fault_kind").set_value(fault)
    at.button(key="classify_run").click().run()
    job = at.session_state["classify_job"]
    assert job.wait(30), "the batch did not finish"
    at.run()
    assert at.text_area(key="classify_lines").value == LINES, "the pasted lines are kept"
    rows = job.frame()
    assert rows["text"].tolist() == LINES.split("\n") and (rows["status"] == "error").all(), "every row is kept"
    shown = next(df.value for df in at.dataframe if "error" in df.value.columns)
    assert shown["text"].tolist() == LINES.split("\n") and shown["error"].notna().all()
    return "2 of 2 requests failed"  # the batch's own failure summary (cfai.failures)


def compare(at, route: Route, model: str | None = None, body: dict | None = None) -> str:
    at.switch_page("pages/compare.py").run()
    if model or body:
        at.segmented_control(key="cmp_body_kind").set_value("Raw JSON").run()
        at.text_input(key="cmp_raw_model").set_value(model or LLM)
        at.text_area(key="cmp_raw_body").set_value(json.dumps(body or {"prompt": COMPARE_PROMPT}))
    else:
        at.text_area(key="cmp_prompt").set_value(COMPARE_PROMPT)
    at.number_input(key="cmp_n").set_value(2)
    at.number_input(key="cmp_warmup").set_value(0)
    at.multiselect(key="cmp_routes").set_value([route]).run()
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    assert at.session_state["compare_active"].wait(60), "the comparison did not finish"
    at.run()  # as the polling fragment does when the run ends: the page shows the stored run
    assert at.number_input(key="cmp_n").value == 2 and at.multiselect(key="cmp_routes").value == [route], \
        "the plan is kept"
    if model or body:
        assert json.loads(at.text_area(key="cmp_raw_body").value) == (body or {"prompt": COMPARE_PROMPT})
    else:
        assert at.text_area(key="cmp_prompt").value == COMPARE_PROMPT, "the prompt is kept"
    return "No measured request succeeded"


@dataclass(frozen=True)
class PageCase:
    id: str
    step: Callable[..., str]  # (at, route, **kwargs) -> marker: drive the page, assert the input is kept
    error: type[CloudflareError]  # whose hint the page must show
    route: Route = "direct"
    kwargs: tuple[tuple[str, object], ...] = ()
    typed_model: tuple[str, str] | None = None  # (widget key, model id) typed into a model picker


LOCAL_CASES = [
    PageCase("playground-503-streamed", playground, ServerError, kwargs=(("fault", "503"),)),
    PageCase("playground-429-streamed", playground, RateLimitError, kwargs=(("fault", "429"),)),
    PageCase("playground-malformed-json", playground, MalformedResponseError, "gateway",
             (("fault", "malformed-json"), ("stream", False))),
    PageCase("classify-unknown-model", classify_single, ModelNotFoundError, "gateway",
             typed_model=("classify_model", UNKNOWN_MODEL)),
    PageCase("classify-too-large", classify_single, RequestTooLargeError, kwargs=(("text", "x" * TOO_LARGE),)),
    PageCase("batch-503", classify_batch, ServerError, kwargs=(("fault", "503"),)),
    PageCase("batch-429", classify_batch, RateLimitError, "gateway", (("fault", "429"),)),
    PageCase("batch-malformed-json", classify_batch, MalformedResponseError, kwargs=(("fault", "malformed-json"),)),
    PageCase("compare-bad-input", compare, BadInputError, kwargs=(("body", {"prompt": 5}),)),
    PageCase("compare-unknown-model-gateway", compare, ModelNotFoundError, "gateway",
             (("model", UNKNOWN_MODEL),)),
]


@pytest.mark.parametrize("case", LOCAL_CASES, ids=lambda c: c.id)
def test_local_mode_page_shows_the_fault(app, case: PageCase):
    if case.typed_model:  # as if typed: set before the picker is drawn (AppTest cannot type a new option)
        app.session_state[case.typed_model[0]] = case.typed_model[1]
    marker = case.step(app, case.route, **dict(case.kwargs))
    assert_clear_message(app, case.error, case.id, marker)


@dataclass(frozen=True)
class CloudSetup:
    id: str
    error: type[CloudflareError]
    route: Route = "direct"
    env: tuple[tuple[str, str], ...] = ()  # overrides of the Cloudflare-mode env vars
    refused: bool = False  # point both base URLs at a closed port


CLOUD_SETUPS = [
    # The playground's bad-token case is in test_page_playground.py.
    CloudSetup("bad-token", AuthenticationError, env=(("CLOUDFLARE_API_TOKEN", "not-the-token"),)),
    # A malformed account id never reaches Cloudflare from the pages: sending is off until it is fixed
    # (tests/test_app.py::test_a_malformed_setting_turns_sending_off_on_every_page); 7003 is a client row above.
    CloudSetup("gateway-unauthorized-2009", GatewayAuthError, "gateway",
               (("CLOUDFLARE_GATEWAY_ID", AUTH_GATEWAY), ("CLOUDFLARE_GATEWAY_TOKEN", "not-the-gateway-token"))),
    CloudSetup("gateway-rate-limited-2003", RateLimitError, "gateway", (("CLOUDFLARE_GATEWAY_ID", LIMITED_GATEWAY),)),
    CloudSetup("connection-refused", NetworkError, refused=True),
]
CLOUD_STEPS: list[tuple[str, Callable[..., str]]] = [
    ("playground", playground), ("classify single", classify_single), ("classify batch", classify_batch),
    ("compare", compare),
]


@pytest.mark.parametrize("setup", CLOUD_SETUPS, ids=lambda s: s.id)
def test_cloudflare_mode_pages_show_the_fault(app_env, locked, monkeypatch, setup: CloudSetup):
    """One app per setup, every page in turn (an app start costs about a second)."""
    from streamlit.testing.v1 import AppTest

    base = f"http://127.0.0.1:{closed_port()}" if setup.refused else locked.base_url
    env = {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_GATEWAY_ID": OPEN_GATEWAY,
           "CLOUDFLARE_API_BASE_URL": f"{base}/client/v4", "CLOUDFLARE_GATEWAY_BASE_URL": f"{base}/v1",
           **dict(setup.env)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    for name, step in CLOUD_STEPS:
        if setup.id == "bad-token" and name == "playground":
            continue
        marker = step(at, setup.route)
        assert_clear_message(at, setup.error, f"{setup.id} / {name}", marker)
