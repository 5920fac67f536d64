"""Runs the emulator with uvicorn in a background thread of this process."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from cfai.emulator.app import create_app
from cfai.emulator.connections import default_max_connections, guarded_protocol
from cfai.emulator.faults import install_log_filter
from cfai.emulator.logs import rate_limited_logger
from cfai.emulator.state import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_GATEWAY_LOG_MAX_BYTES,
    DEFAULT_HEADER_TIMEOUT_S,
    EmulatorOptions,
    EmulatorState,
)

STARTUP_TIMEOUT_S = 20.0


class EmulatorHandle:
    """A running emulator: `.base_url`, `.port`, `.state`, `.stop()` (idempotent), usable as a context manager."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, state: EmulatorState, host: str, port: int):
        self._server, self._thread, self.state = server, thread, state
        self.host, self.port = host, port
        self.base_url = state.base_url
        self._stopped = False
        self._lock = threading.Lock()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    @property
    def open_connections(self) -> int:
        """Client connections the server holds now (the gateway's own hops to Workers AI not counted)."""
        internal = self.state.internal_port
        ports = [getattr(c, "server", None) for c in list(self._server.server_state.connections)]
        return sum(1 for server in ports if server is None or server[1] != internal)

    @property
    def active_requests(self) -> int:
        """Requests being handled now; 0 once every handler, including one whose client left, has finished."""
        return len(self._server.server_state.tasks)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle({self.base_url!r}, running={self.running})"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _wait_until_accepting(host: str, port: int, thread: threading.Thread, server: uvicorn.Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the emulator failed to start (see the log above)")
        if server.started:
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return
            except OSError:
                pass
        time.sleep(0.01)
    server.should_exit = True
    raise RuntimeError(f"the emulator did not accept connections within {STARTUP_TIMEOUT_S:.0f} s")


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and without
    # it every response pays ~40 ms of Nagle + delayed ACK on keep-alive connections.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 1.0,
    api_token: str | None = None,
    seed: int = 0,
    allow_faults: bool = False,
    lenient_gateways: bool = False,
    legacy_logs: bool = True,
    strict_accounts: bool = False,
    upstream_openai: str | None = None,
    upstream_model: str | None = None,
    rate_limits: bool = True,
    busy_threshold: int = 32,
    network_rtt_ms: float = 0.0,
    network_jitter_ms: float = 0.0,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    max_connections: int | None = None,
    gateway_log_max_bytes: int = DEFAULT_GATEWAY_LOG_MAX_BYTES,
) -> EmulatorHandle:
    """Start the emulator in a background thread; returns once its socket accepts connections.

    port=0 picks a free port (see `.port` / `.base_url`). `speed` divides every simulated latency.
    Gateways as on Cloudflare: `default` is created on first use with authentication on (send
    `cf-aig-authorization: Bearer <token>`), `demo` (5-minute cache, authentication off) always exists, and any
    other id must be created first; `lenient_gateways` creates any id on first use, authentication off.
    `legacy_logs=False` answers the logs API as for an account without Legacy Logs.
    By default any account id is accepted (local mode uses 'local'); `strict_accounts` answers a malformed one
    with Cloudflare's 404/7003, as a wrong account id does on the real API. `rate_limits=False` lifts Workers AI's
    per-minute limits (benchmarks, tests); `busy_threshold` is the per-model in-flight count at which a request
    with `options.rejectIfBusy` is refused.
    `network_rtt_ms` (+- `network_jitter_ms`) simulates the internet between client and Cloudflare: every
    request pays it once, on both routes, cache hits included (0: none, for tests and benchmarks).
    Slow clients are dropped after `header_timeout_s` / `body_timeout_s`; at most `max_connections` client
    connections are served at once (default: from the open-files limit, at most 256).
    """
    if busy_threshold < 1:
        raise ValueError("busy_threshold must be at least 1")
    options = EmulatorOptions(
        host=host, port=port, speed=speed, api_token=api_token or None, seed=seed, allow_faults=allow_faults,
        lenient_gateways=lenient_gateways, legacy_logs=legacy_logs, strict_accounts=strict_accounts, upstream_openai=upstream_openai,
        upstream_model=upstream_model, rate_limits=rate_limits, busy_threshold=busy_threshold,
        network_rtt_ms=network_rtt_ms, network_jitter_ms=network_jitter_ms,
        header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s, max_connections=max_connections,
        gateway_log_max_bytes=gateway_log_max_bytes,
    )
    options.check()
    state = EmulatorState(options)
    # Bind first, so the real ports are known (and the URLs set) before the app is built. The internal socket
    # is for the gateway's hop to the Workers AI routes only, always on loopback.
    sock = _bound_socket(host, port)
    internal_host = "::1" if ":" in host and host != "::" else "127.0.0.1"
    try:
        internal = _bound_socket(internal_host, 0)
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    state.base_url = f"http://{_url_host(host)}:{bound_port}"
    state.internal_port = internal.getsockname()[1]
    state.internal_url = f"http://{_url_host(internal_host)}:{state.internal_port}"
    install_log_filter()
    rate_limited_logger("uvicorn.error")
    protocol = guarded_protocol(
        header_timeout_s=options.header_timeout_s, body_timeout_s=options.body_timeout_s,
        max_connections=options.max_connections or default_max_connections(), internal_port=state.internal_port,
    )
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        http=protocol,
        lifespan="on",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock, internal]},
                              name=f"cfai-emulator-{bound_port}", daemon=True)
    thread.start()
    try:
        # Probe the internal socket: uvicorn starts both before `started`, and a probe of the public one
        # would briefly take one of the client connection slots.
        _wait_until_accepting(internal_host, state.internal_port, thread, server)
    except RuntimeError:
        thread.join(5)
        sock.close()
        internal.close()
        raise
    return EmulatorHandle(server, thread, state, host, bound_port)
