"""Command line for automation: `python -m cfai compare ...`, and the lab's `sweep` and `runs ...` (cfai.cli_lab,
registered in `build_parser`).

Exit codes: 0 ok, 2 bad arguments or settings, 1 the run failed entirely (no measured request succeeded; the
most common error and its hint are printed on stderr), 130 cancelled with Ctrl-C (what was measured is
stored as a cancelled run and summarised).
The summary printed with --json is built from the records as stored, by `cfai.stats.route_summary`, the same
function the Compare and History pages call, so the numbers agree; its `cost` is `cfai.cost.run_cost_summary`
with the catalogue's list price, or the custom price given with --price-in/--price-out (stored with the run).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from cfai import jobs
from cfai.catalog import DEFAULT_TEXT_GENERATION_MODEL
from cfai.compare import Runner, RunResult, connection_label
from cfai.config import (
    CLOUDFLARE_API_BASE,
    CLOUDFLARE_GATEWAY_BASE,
    ENV_ACCOUNT_ID,
    ENV_API_TOKEN,
    LOCAL_ACCOUNT_ID,
    LOCAL_API_TOKEN,
    LOCAL_GATEWAY_ID,
    ConfigError,
    Connection,
    cloudflare_settings,
    connection_from_settings,
    local_connection,
)
from cfai.failures import summarize_failures
from cfai.format import (
    format_count,
    format_interval,
    format_ms,
    format_percent,
    format_rate,
    format_ratio,
    format_usd,
)
from cfai.live_run import FINAL_RETRY_DELAYS_S, RETRY_EVERY_S
from cfai.plan import MAX_CONCURRENCY, Plan
from cfai.pricing import ModelPrice, PriceError, custom_price
from cfai.records import records_frame, run_status
from cfai.request_options import header_problems
from cfai.routes import ROUTE_DESCRIPTIONS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
DEFAULT_PROMPT = "In one sentence, what does a cache in front of an AI model save?"


class UsageError(Exception):
    """Bad arguments or settings: printed without a traceback, exit code 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cfai", description="Workers AI Lab from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "compare",
        help="compare routes (direct, gateway, gateway-skip, unified) for one request, store the run, print a summary",
        description="Send the same request N times per route, interleaved, and report latency percentiles, "
        "cache hit rate and the speed-up of a gateway cache hit over the direct route.",
    )
    p.add_argument("--model", default=DEFAULT_TEXT_GENERATION_MODEL,
                   help=f"model id (default {DEFAULT_TEXT_GENERATION_MODEL})")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--prompt", help="text generation: send {\"prompt\": TEXT} (the default body)")
    body.add_argument("--text", help="text classification: send {\"text\": TEXT}")
    body.add_argument("--body", help="any raw request body, as a JSON object")
    p.add_argument("--max-tokens", type=int, help="add max_tokens to a --prompt body")
    p.add_argument("--stream", action="store_true", help="stream the responses (TTFB = first token)")
    p.add_argument("--routes", default="direct,gateway",
                   help="comma-separated, from " + "; ".join(f"{r} ({d})" for r, d in ROUTE_DESCRIPTIONS.items()))
    p.add_argument("--n", type=int, default=30, help="measured requests per route (default 30)")
    p.add_argument("--warmup", type=_positive_int, default=1, help="warm-up requests per route, excluded (default 1)")
    p.add_argument("--concurrency", type=int, default=1, help=f"closed loop: requests in flight, 1..{MAX_CONCURRENCY}")
    p.add_argument("--rate", type=float, help="open loop: requests per second across all routes (overrides --concurrency)")
    p.add_argument("--cache-mode", choices=("identical", "unique"), default="identical",
                   help="identical: later gateway requests hit the cache; unique: every request misses")
    p.add_argument("--cache-ttl", type=int, default=300,
                   help="cf-aig-cache-ttl on the gateway route, seconds (default 300; 0 sends none)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="total deadline per request, seconds (default 60): a request still unfinished after S "
                   "seconds, however steadily bytes trickle in or a stream keeps going, is stopped and recorded "
                   "as a 'deadline' error with what arrived")
    p.add_argument("--name", default="", help="a name for the stored run")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                   help="extra request header, repeatable (e.g. x-emulator-delay-ms:50 against the emulator)")
    price = p.add_argument_group("cost (default: the model's list price from the catalogue)")
    price.add_argument("--price-in", type=float, metavar="USD", help="custom price: USD per million input tokens")
    price.add_argument("--price-out", type=float, metavar="USD", help="custom price: USD per million output tokens")
    price.add_argument("--price-cached-in", type=float, metavar="USD",
                       help="custom price: USD per million cached input tokens (default: the input price)")
    where = p.add_argument_group("where to send requests (default: Cloudflare, credentials from env vars)")
    where.add_argument("--local", action="store_true", help="start the local emulator in-process and use it")
    where.add_argument("--speed", type=float, help="with --local: emulator speed-up factor (default realistic)")
    where.add_argument("--api-base", help="Workers AI base URL, e.g. http://127.0.0.1:8787/client/v4")
    where.add_argument("--gateway-base", help="AI Gateway base URL, e.g. http://127.0.0.1:8787/v1")
    where.add_argument("--gateway-id", help="AI Gateway id (default $CLOUDFLARE_GATEWAY_ID, or 'demo' locally)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    out.add_argument("--db", help="history database (default $CFAI_DATA_DIR/history.sqlite3 or the user data dir)")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=cmd_compare)
    from cfai import cli_lab  # the lab's commands (sweep, runs, --engine); it imports this module, so lazily

    cli_lab.register(sub)
    return parser


# --- compare -----------------------------------------------------------------------------------------------
def request_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.body is not None:
        try:
            body = json.loads(args.body)
        except ValueError as exc:
            raise UsageError(f"--body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise UsageError("--body must be a JSON object, e.g. '{\"prompt\": \"Hello\"}'.")
        return body
    if args.text is not None:
        return {"text": args.text}
    body = {"prompt": args.prompt if args.prompt is not None else DEFAULT_PROMPT}
    if args.max_tokens is not None:
        body["max_tokens"] = args.max_tokens
    return body


def parse_headers(items: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {item!r}: write it as NAME:VALUE.")
        headers[name.strip()] = value.strip()
    problems = header_problems(headers)
    if problems:
        raise UsageError("--header: " + " ".join(problems))
    return headers


def price_from_args(args: argparse.Namespace) -> ModelPrice | None:
    """The custom price given with --price-in/--price-out/--price-cached-in (USD per M tokens), or None."""
    values = [getattr(args, name, None) for name in ("price_in", "price_out", "price_cached_in")]
    if all(v is None for v in values):
        return None
    try:
        return custom_price(args.model, input_per_m=values[0], output_per_m=values[1], cached_input_per_m=values[2],
                            note="--price-in/--price-out")
    except PriceError as exc:
        raise UsageError(f"--price-in/--price-out: {exc}") from None


def plan_from_args(args: argparse.Namespace) -> Plan:
    routes = tuple(r.strip() for r in args.routes.split(",") if r.strip())
    price = price_from_args(args)
    plan = Plan(
        model=args.model, body=request_body(args), routes=routes, n=args.n, warmup=args.warmup,
        concurrency=args.concurrency, rate=args.rate, cache_ttl=args.cache_ttl or None, cache_mode=args.cache_mode,
        stream=args.stream, timeout_s=args.timeout, name=args.name, extra_headers=parse_headers(args.header),
        price=price.to_dict() if price is not None else None,
    )
    problems = plan.problems()
    if problems:
        raise UsageError(" ".join(problems))
    return plan


def connection_from_args(args: argparse.Namespace, env: dict[str, str], stack: ExitStack) -> Connection:
    """--local: an in-process emulator. --api-base/--gateway-base: those URLs, with env credentials when set,
    else the emulator's defaults (account 'local', gateway 'demo'). Otherwise Cloudflare from env vars."""
    if args.local and (args.api_base or args.gateway_base):
        raise UsageError("Use either --local or --api-base/--gateway-base, not both.")
    if args.local:
        from cfai.emulator import start_emulator

        kwargs = {"speed": args.speed} if args.speed else {}
        handle = start_emulator(port=0, **kwargs)
        stack.callback(handle.stop)
        return local_connection(handle.base_url, gateway_id=args.gateway_id)
    settings = cloudflare_settings(env)
    cloud = connection_from_settings(settings)
    if args.api_base or args.gateway_base:
        return _connection_for_bases(args, settings)
    if cloud is None:
        raise UsageError(
            "No Cloudflare credentials: set CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (and "
            "CLOUDFLARE_GATEWAY_ID for the gateway routes), or use --local for the built-in emulator."
        )
    conn = cloud.with_changes(gateway_id=args.gateway_id) if args.gateway_id else cloud
    problems = conn.validate()
    if problems:
        raise UsageError(" ".join(str(p) for p in problems))
    return conn


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on this machine (localhost, 127.0.0.0/8, ::1): where a placeholder token may go."""
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connection_for_bases(args: argparse.Namespace, settings: dict[str, str]) -> Connection:
    """--api-base/--gateway-base: the token and ids from the environment when set (whatever the account id),
    else the emulator's placeholders, but only for bases on this machine: a placeholder token never goes to
    another host, and a real base without a token is refused rather than sent a fake one."""
    api_base = args.api_base or settings.get("api_base_url") or CLOUDFLARE_API_BASE
    gateway_base = args.gateway_base or settings.get("gateway_base_url") or CLOUDFLARE_GATEWAY_BASE
    local = is_loopback_url(api_base) and is_loopback_url(gateway_base)
    token = settings.get("api_token") or ""
    account = settings.get("account_id") or ""
    if not token and not local:
        remote = api_base if not is_loopback_url(api_base) else gateway_base
        raise UsageError(
            f"{remote} is not on this machine and {ENV_API_TOKEN} is not set: set it (and {ENV_ACCOUNT_ID}) "
            "to call that base. Without a token, --api-base/--gateway-base must point at this machine "
            "(e.g. the emulator at http://127.0.0.1:8787)."
        )
    if token and not account and not local:
        raise UsageError(f"Set {ENV_ACCOUNT_ID} to call {api_base} with {ENV_API_TOKEN}.")
    conn = Connection(
        mode="cloudflare" if token else "local",
        account_id=account or LOCAL_ACCOUNT_ID,
        api_token=token or LOCAL_API_TOKEN,
        gateway_id=args.gateway_id or settings.get("gateway_id") or (LOCAL_GATEWAY_ID if local else ""),
        gateway_token=settings.get("gateway_token") or None,
        api_base_url=api_base,
        gateway_base_url=gateway_base,
    )
    problems = [p for p in conn.validate() if not (local and p.field == "account_id")]
    if problems:
        raise UsageError(" ".join(str(p) for p in problems))
    return conn


def _progress_printer(total: int, stream: TextIO) -> Callable[[Any], None]:
    done = 0
    step = max(1, total // 20)

    def on_record(record: Any) -> None:
        nonlocal done
        done += 1
        if done % step == 0 or done == total:
            stream.write(f"\r{done}/{total} requests")
            if done == total:
                stream.write("\n")
            stream.flush()

    return on_record


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table for humans: latency per route, then (streamed runs) token timing
    per route, the speed-up, and (when the summary has one) the cost."""
    head = ("route", "n", "errors", "429", "hit rate", "p50", "p90", "p95", "p99", "mean", "ttfb p50")
    rows = [head]
    for route, s in summary["routes"].items():
        rows.append((route, format_count(s["n"]), format_count(s.get("errors_other", s["errors"])),
                     format_count(s.get("throttled", 0)), format_percent(s["hit_rate"]),
                     *(format_ms(s[k]) for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms")),
                     format_ms(s.get("ttfb_p50_ms"))))
    lines = _aligned(rows)
    lines[0] += "   (errors: other than 429; 429: throttled)"
    timing = format_token_timing(summary)
    if timing:
        lines += ["", timing]
    sp = summary["speedup"]
    if sp["median_ratio"] is None:
        lines.append("\nspeed-up of a gateway cache hit over direct: not computable "
                     f"({sp['n_numerator']} direct, {sp['n_denominator']} gateway hits succeeded)")
    else:
        lo, hi = sp["ci95"]
        lines.append("\nspeed-up of a gateway cache hit over direct (ratio of medians): "
                     f"{format_ratio(sp['median_ratio'])} (95% CI {format_interval(lo, hi)}; "
                     f"{sp['n_numerator']} direct vs {sp['n_denominator']} hits)")
    if summary.get("cost") is not None:
        lines += ["", format_cost(summary["cost"])]
    return "\n".join(lines)


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]


def format_token_timing(summary: dict[str, Any]) -> str:
    """Token timing per route (streamed requests; cfai.token_timing): TTFT, first answer token, ITL (each
    request's p50 and p99 gap, as the median over requests), TPOT and output tokens/s. Empty when not streamed."""
    head = ("route", "streams", "ttft p50", "ttft p99", "1st answer p50", "itl p50", "itl p99", "tpot p50",
            "tpot p99", "tokens/s p50")
    rows = [head]
    for route, s in summary["routes"].items():
        t = s.get("token_timing")
        if not t:
            continue
        rows.append((route, format_count(t["n"]), format_ms(t["ttft_ms"]["p50"]), format_ms(t["ttft_ms"]["p99"]),
                     format_ms(t["first_answer_ms"]["p50"]), format_ms(t["itl_p50_ms"]["p50"]),
                     format_ms(t["itl_p99_ms"]["p50"]), format_ms(t["tpot_ms"]["p50"]), format_ms(t["tpot_ms"]["p99"]),
                     format_rate(t["output_tps"]["p50"], "tok/s")))
    if len(rows) == 1:
        return ""
    return "token timing (streamed requests, per-request values over requests):\n" + "\n".join(_aligned(rows))


def format_cost(cost: dict[str, Any]) -> str:
    """The cost figures of `cfai.cost.run_cost_summary`, with the price used."""
    price = cost.get("price")
    if price is None:
        return "cost: no price listed for this model (set --price-in/--price-out for your contract)"
    source = "custom price" if price.get("source") == "custom" else "list price"
    rates = ", ".join(f"${price[k]:g}/M {label}" for k, label in (("input_per_m", "in"),
                      ("cached_input_per_m", "cached in"), ("output_per_m", "out")) if price.get(k) is not None)
    lines = [f"cost ({source}: {rates}):"]
    for route, r in cost["routes"].items():
        lines.append(f"  {route}: {format_usd(r.get('cost_p50_usd'))} per request (p50), "
                     f"{format_usd(r.get('cost_mean_usd'))} mean, {format_usd(r.get('cost_total_usd'))} in all "
                     f"({r.get('priced', 0)} of {r.get('requests', 0)} priced)")
    by_route = cost.get("cache_saved_by_route") or {}
    savings = [s for s in by_route.values() if s is not None] or [s for s in [cost.get("cache_saved")] if s]
    for saved in savings:
        lines.append(f"  {saved['label']} on the {saved['route']} route (a cache hit costs nothing on Workers AI)")
    return "\n".join(lines)


CATALOGUE_DEADLINE_S = 10.0  # the price lookup after a run: never longer than this


def catalogue_price(client: Any, model: str, deadline_s: float = CATALOGUE_DEADLINE_S) -> tuple[ModelPrice | None, str | None]:
    """The model's list price from the live catalogue (the emulator's locally), and a note when it could not
    be read. Reads the catalogue entries whose name matches (`search`), within `deadline_s` for all pages."""
    from cfai.catalog import model_id
    from cfai.errors import CloudflareError
    from cfai.pricing import price_from_entry

    try:
        entries = client.list_models(search=model.rsplit("/", 1)[-1], deadline=deadline_s)
    except CloudflareError as exc:
        return None, f"the catalogue could not be read ({exc}): no price"
    for entry in entries:
        if isinstance(entry, dict) and model_id(entry) == model:
            return price_from_entry(entry, model), None
    return None, f"{model} is not in the catalogue: no price listed"


def cost_section(client: Any, plan: Plan, records: Any) -> dict[str, Any]:
    """`compare --json`'s `cost`: run_cost_summary with the plan's custom price, else the catalogue's; plus
    where the price came from (`price_source`) and why there is none (`price_note`)."""
    from cfai.cost import cache_saving, run_cost_summary
    from cfai.routes import CACHING_ROUTES

    note = None
    succeeded = bool(len(records)) and bool(records["ok"].astype(bool).any()) if "ok" in records else False
    if plan.price is not None:
        price: ModelPrice | None = ModelPrice.from_dict(plan.price)
        source = "custom"
    elif not succeeded:  # nothing to price: ask the catalogue nothing (a cancelled or failed run sends no more)
        price, source, note = None, "none", "no request succeeded, so there is nothing to price"
    else:
        price, note = catalogue_price(client, plan.model, min(CATALOGUE_DEADLINE_S, plan.timeout_s))
        source = "catalogue" if price is not None else "none"
    summary = run_cost_summary(records, price)
    # What the cache saved on each caching route the run used (the gateway URL and the unified route alike).
    routes = set(records["route"].astype(str)) if "route" in records else set()
    summary["cache_saved_by_route"] = {
        route: (saving.to_dict() if (saving := cache_saving(records, price, route)) is not None else None)
        for route in CACHING_ROUTES if route in routes}
    summary["price_source"] = source
    summary["price_note"] = note
    return summary


def cmd_compare(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    from cfai.stats import max_in_flight, route_summary, start_lag_warning
    from cfai.store import Store

    plan = plan_from_args(args)
    with ExitStack() as stack:
        conn = connection_from_args(args, env, stack)
        from cfai.client import Client

        client = Client(conn)
        stack.callback(client.close)
        try:
            runner = Runner(client, plan)
        except (ConfigError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        store = Store(args.db) if args.db else Store()
        stack.callback(store.close)
        # Saved as it goes: Ctrl-C or a crash keeps what was measured; a store that fails does not stop it.
        writer = _RunWriter(store, runner.run_id)
        writer.begin(plan, connection_label(conn))
        if not args.quiet:
            err.write(f"run {runner.run_id}: {plan.model}, routes {','.join(plan.routes)}, {plan.n} measured + "
                      f"{plan.warmup} warm-up per route, {_deadline_words(plan)}\n")
            err.flush()
        progress = None if args.quiet else _progress_printer(runner.total, err)
        recording = threading.Lock()
        accepting = [True]  # cleared once the run is over: a request abandoned in flight is not stored later

        def on_record(record: Any) -> None:
            with recording:
                if not accepting[0]:
                    return
                writer.add(record)
                if progress:
                    progress(record)

        cancel = threading.Event()
        try:
            result = _run_in_thread(runner, on_record, cancel, err)
        finally:
            with recording:
                accepting[0] = False
            # On Ctrl-C the run is cancelled and stored as such: what was measured is kept.
            stored = writer.finish(cancelled=cancel.is_set())
        records = records_frame(writer.records)
        status = store.run_info(runner.run_id).status if stored else run_status(writer.records, cancel.is_set())
        summary = {"run_id": runner.run_id, "status": status, "model": plan.model, "deadline_s": plan.timeout_s,
                   **route_summary(records), "cost": cost_section(client, plan, records)}
        if not stored:  # the history could not take the run: it leaves as a file History imports
            saved_to = writer.export(plan, conn, status, result)
            summary["unsaved"] = {"reason": writer.error, "export": str(saved_to) if saved_to else None}
            err.write(f"warning: the run could not be stored ({writer.error})"
                      + (f"; it is saved as {saved_to} (import it on the History page or with `cfai runs "
                         f"import`)" if saved_to else "; and it could not be saved as a file either") + ".\n")
        failure = summarize_failures(records)
        if failure is not None and status == "failed":
            summary["failure"] = failure.to_dict()
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        where = f"stored in {store.path}" if "unsaved" not in summary else "not stored (see the warning)"
        out.write(f"run {summary['run_id']} ({status}), model {plan.model}, {_deadline_words(plan)}, "
                  f"{where}\n\n")
        out.write(format_table(summary) + "\n")
    lag_warning = start_lag_warning(summary, open_loop=plan.rate is not None, rate=plan.rate,
                                    in_flight_peak=max_in_flight(records) if plan.rate is not None else None)
    if lag_warning:  # on stderr, so --json output stays one JSON document
        err.write(f"warning: {lag_warning}\n")
    if cancel.is_set():
        kept = len(records)
        err.write(f"cancelled: {kept} request(s) measured and stored as run {runner.run_id} (cancelled)"
                  + ("; requests still in flight were not recorded" if result is None else "") + ".\n")
        return EXIT_CANCELLED
    if status == "failed":
        why = f": {failure.text()}" if failure is not None else "."
        err.write(f"error: no measured request succeeded{why}\n")
        return EXIT_FAILED
    return EXIT_OK


class _RunWriter:
    """The CLI's records on their way to the history. A failed write (a full disk, a lock held by another
    program) never stops the run: the records wait in memory and are written again at the next record (at
    most every `RETRY_EVERY_S`) and at the end; if the history still cannot take them, `export` writes the
    run as a file that History imports. Every record is also kept in memory for the summary."""

    def __init__(self, store: Any, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.records: list[Any] = []
        self._pending: list[Any] = []
        self._begun = False
        self._retry_at = 0.0
        self.error: str | None = None

    def begin(self, plan: Plan, label: str) -> None:
        from cfai.store import StoreError

        self._plan, self._label = plan, label
        try:
            self.store.begin_run(self.run_id, plan, connection_label=label)
            self._begun = True
        except StoreError as exc:
            self.error = str(exc)

    def add(self, record: Any) -> None:
        self.records.append(record)
        self._pending.append(record)
        if time.monotonic() >= self._retry_at:
            self._write()

    def _write(self) -> bool:
        from cfai.store import StoreError

        try:
            if not self._begun:
                self.store.begin_run(self.run_id, self._plan, connection_label=self._label)
                self._begun = True
            if self._pending:
                self.store.add_records(self.run_id, self._pending)
                self._pending = []
        except StoreError as exc:
            self.error = str(exc)
            self._retry_at = time.monotonic() + RETRY_EVERY_S
            return False
        return True

    def finish(self, cancelled: bool) -> bool:
        """Write what waits and the final status (a few tries); True when the history holds the whole run."""
        from cfai.store import StoreError

        for delay in (0.0, *FINAL_RETRY_DELAYS_S):
            time.sleep(delay)
            if self._write():
                try:
                    self.store.finish_run(self.run_id, cancelled=cancelled)
                except StoreError as exc:
                    self.error = str(exc)
                    continue
                self.error = None
                return True
        return False

    def export(self, plan: Plan, conn: Connection, status: str, result: RunResult | None) -> Path | None:
        """The run as a JSON export in the current folder (or the temp folder): what History imports."""
        from dataclasses import asdict

        from cfai.store import export_bytes, run_info_of

        now = time.time()
        finished = result or RunResult(run_id=self.run_id, plan=plan, started_at=now, finished_at=now,
                                       records=list(self.records), cancelled=status == "cancelled",
                                       connection_label=self._label)
        data = export_bytes(run_info_of(finished, conn, status=status), [asdict(r) for r in self.records], "json")
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            path = folder / f"cfai-run-{self.run_id}.json"
            try:
                path.write_bytes(data)
            except OSError:
                continue
            return path
        return None


def _deadline_words(plan: Plan) -> str:
    return f"deadline {plan.timeout_s:g} s per request"


def _run_in_thread(runner: Runner, on_record: Callable[[Any], None], cancel: threading.Event,
                   err: TextIO | None = None) -> RunResult | None:
    """Run as a background job so Ctrl-C in the main thread cancels cleanly instead of killing mid-write.

    First Ctrl-C: no new requests; the ones in flight finish (each by its deadline) and are recorded.
    A second Ctrl-C: stop waiting for them (returns None; they are not recorded)."""

    def say_cancelling() -> None:
        if err is not None:
            err.write("\ncancelling: no new requests; waiting for those in flight (each ends by its deadline). "
                      "Press Ctrl-C again to stop waiting.\n")
            err.flush()

    job = jobs.start(lambda _job: runner.run(on_record=on_record, cancel=cancel), name="cfai-compare",
                     cancel=cancel)
    return job.wait_cancelling_on_interrupt(on_cancel=say_cancelling)


# --- entry point -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message
        return int(exc.code or 0) and EXIT_USAGE
    from cfai.store import StoreError

    try:
        return args.handler(args, out, err, dict(os.environ))
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StoreError as exc:  # the history cannot be opened at all: say which file and what to do
        err.write(f"error: {exc}\n")
        return EXIT_FAILED
