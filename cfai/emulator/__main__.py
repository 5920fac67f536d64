"""`python -m cfai.emulator`: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from cfai.emulator.server import start_emulator
from cfai.emulator.state import DEFAULT_BODY_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S, EmulatorOptions

TOKEN_ENV = "CFAI_EMULATOR_API_TOKEN"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m cfai.emulator", description="Local Workers AI + AI Gateway emulator")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port (default 8787)")
    p.add_argument("--speed", type=float, default=1.0, help="divide simulated latencies by this (default 1)")
    p.add_argument("--api-token", default=None, help=f"require this bearer token (or set {TOKEN_ENV})")
    p.add_argument("--seed", type=int, default=0, help="default seed of the text simulator")
    p.add_argument("--allow-faults", action="store_true", help="honour x-emulator-fault / x-emulator-delay-ms")
    p.add_argument("--lenient-gateways", action="store_true",
                   help="create any gateway id on first use, authentication off (by default only `default` is "
                        "created, with authentication on, as on Cloudflare; `demo` always exists)")
    p.add_argument("--no-legacy-logs", action="store_true",
                   help="answer the gateway logs API as for an account without Legacy Logs (404/4903)")
    p.add_argument("--strict-accounts", action="store_true",
                   help="account ids that are not 32 lowercase hex answer 404/7003, as on Cloudflare")
    p.add_argument("--upstream-openai", default=None, metavar="URL",
                   help="forward text generation to this OpenAI-compatible server (e.g. http://127.0.0.1:11434/v1)")
    p.add_argument("--upstream-model", default=None, help="model name to request from the upstream server")
    p.add_argument("--no-rate-limits", action="store_true",
                   help="lift Workers AI's per-minute request limits (for benchmarks and tests)")
    p.add_argument("--busy-threshold", type=int, default=32,
                   help="in-flight requests per model at which options.rejectIfBusy answers 429/3040 (default 32)")
    p.add_argument("--network-rtt-ms", type=float, default=0.0, metavar="MS",
                   help="simulated internet round trip added once to every request, both routes, cache hits "
                        "included (default 0: none); labelled in the cf-emulator-network-rtt-ms header")
    p.add_argument("--network-jitter-ms", type=float, default=0.0, metavar="MS",
                   help="uniform jitter of that round trip, +- MS (default 0)")
    p.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT_S, metavar="S",
                   help=f"drop a client whose request headers take longer (default {DEFAULT_HEADER_TIMEOUT_S:g} s)")
    p.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT_S, metavar="S",
                   help=f"drop a client whose request body takes longer (default {DEFAULT_BODY_TIMEOUT_S:g} s)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="client connections served at once; more get 503 (default: from the open-files limit, "
                        "at most 256)")
    args = p.parse_args(argv)
    try:
        EmulatorOptions(speed=args.speed, network_rtt_ms=args.network_rtt_ms,
                        network_jitter_ms=args.network_jitter_ms, header_timeout_s=args.header_timeout,
                        body_timeout_s=args.body_timeout, max_connections=args.max_connections).check()
    except ValueError as exc:
        p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # installed first, so an early signal still stops cleanly
        signal.signal(sig, lambda *_: stop.set())
    try:
        handle = start_emulator(
            host=args.host, port=args.port, speed=args.speed,
            api_token=args.api_token or os.environ.get(TOKEN_ENV) or None,
            seed=args.seed, allow_faults=args.allow_faults, lenient_gateways=args.lenient_gateways,
            legacy_logs=not args.no_legacy_logs,
            strict_accounts=args.strict_accounts,
            upstream_openai=args.upstream_openai, upstream_model=args.upstream_model,
            rate_limits=not args.no_rate_limits, busy_threshold=args.busy_threshold,
            network_rtt_ms=args.network_rtt_ms, network_jitter_ms=args.network_jitter_ms,
            header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
            max_connections=args.max_connections,
        )
    except (OSError, RuntimeError) as exc:
        print(f"cannot start the emulator on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"listening on {handle.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            if not handle.running:
                return 1
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
