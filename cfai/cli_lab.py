"""The lab's commands: `cfai sweep`, `cfai runs list|show|export|import|import-locust|delete`, and
`--engine locust` for `cfai compare`. `register(subparsers)` adds them to cfai.cli's parser.

Exit codes as `cfai compare`: 0 ok, 2 bad arguments or settings (an unknown run id, an unreadable import),
1 the run failed entirely (no measured request succeeded) or was cancelled. `--json` prints one JSON document
on stdout; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from cfai import cli, jobs
from cfai.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from cfai.format import MISSING, format_ms, format_rate
from cfai.run_import import RunImportError
from cfai.store import RunInfo, Store, StoreError, asdict_shallow

ENGINES = ("builtin", "locust")



def format_load(value: Any) -> str:
    """A sweep step's offered load: a concurrency or a rate, as the user typed it ("4", "2.5")."""
    return MISSING if value is None else f"{float(value):g}"

def _store(args: argparse.Namespace) -> Any:
    from cfai.store import Store

    return Store(args.db) if getattr(args, "db", None) else Store()


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("load generator")
    group.add_argument("--engine", choices=ENGINES, default="builtin",
                       help="builtin: this process's runner; locust: Locust master + local worker processes")
    group.add_argument("--workers", type=int, default=2, help="with --engine locust: worker processes (default 2)")
    group.add_argument("--write-locustfile", metavar="PATH",
                       help="with --engine locust: write a self-contained locustfile and the master/worker "
                       "command lines for other machines, and send nothing")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `sweep` and `runs` to cfai.cli's subcommands, and `--engine` to `compare` when it is there."""
    compare = subparsers.choices.get("compare")
    if compare is not None:
        add_engine_arguments(compare)
        compare.set_defaults(handler=cmd_compare_with_engine)
        p = subparsers.add_parser(
            "sweep", parents=[compare], conflict_handler="resolve",
            help="run one request at rising load (concurrencies or rates), store the sweep as one run",
            description="Run the compare plan at each load in turn (routes interleaved within a step) and "
            "report latency, TTFT and achieved throughput per step, the knee and where errors or 429s start.",
        )
        loads = p.add_argument_group("sweep")
        loads.add_argument("--concurrencies", help="closed-loop steps, e.g. 1,2,4,8,16")
        loads.add_argument("--rates", help="open-loop steps in requests/s across routes, e.g. 5,10,20,40")
        loads.add_argument("--duration", type=float, help="seconds per step instead of --n requests per route")
        p.set_defaults(handler=cmd_sweep)

    runs = subparsers.add_parser("runs", help="list, show, export, import or delete stored runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    runs_sub.required = True

    def with_db(parser: argparse.ArgumentParser, json_flag: bool = True) -> argparse.ArgumentParser:
        parser.add_argument("--db", help="history database (default $CFAI_DATA_DIR/history.sqlite3)")
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    with_db(runs_sub.add_parser("list", help="stored runs, newest first")).set_defaults(handler=cmd_runs_list)
    show = with_db(runs_sub.add_parser("show", help="one run's metadata and summary (sweeps: per step)"))
    show.add_argument("run_id")
    show.set_defaults(handler=cmd_runs_show)
    export = with_db(runs_sub.add_parser("export", help="a run as JSON or CSV (stdout or --out)"), json_flag=False)
    export.add_argument("run_id")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", help="write to this file instead of stdout")
    export.set_defaults(handler=cmd_runs_export)
    imp = with_db(runs_sub.add_parser("import", help="store a run exported as JSON or CSV"))
    imp.add_argument("file")
    imp.add_argument("--format", choices=("auto", "json", "csv"), default="auto")
    imp.set_defaults(handler=cmd_runs_import)
    loc = with_db(runs_sub.add_parser("import-locust", help="store the records file of a Locust master"))
    loc.add_argument("file")
    loc.add_argument("--name", help="a name for the stored run")
    loc.set_defaults(handler=cmd_runs_import_locust)
    delete = with_db(runs_sub.add_parser("delete", help="delete stored runs by id"))
    delete.add_argument("run_ids", nargs="+", metavar="run_id")
    delete.set_defaults(handler=cmd_runs_delete)


def build_parser() -> argparse.ArgumentParser:
    """cfai.cli's parser, which registers the lab's commands itself (kept for callers of this module)."""
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "runs" not in subparsers.choices:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    import os

    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        return args.handler(args, out, err, dict(os.environ) if env is None else env)
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE


# --- runs ----------------------------------------------------------------------------------------------------
def _run_or_usage(store: Store, run_id: str) -> RunInfo:
    try:
        return store.run_info(run_id)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def cmd_runs_list(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    with _store(args) as store:
        frame = store.list_runs()
    rows = [{**row, "created_at": row["created_at"].isoformat()} for row in frame.to_dict("records")]
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if not rows:
        out.write(f"no stored runs in {store.path}\n")
        return EXIT_OK
    head = ("run_id", "created (UTC)", "status", "records", "model", "routes", "name")
    table = [head] + [(r["run_id"], r["created_at"][:19].replace("T", " "), r["status"], str(r["records"]),
                       r["model"], r["routes"], r["name"]) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for t in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


def run_report(store: Any, run_id: str) -> dict[str, Any]:
    """What `runs show --json` prints: metadata, the route summary (as `compare --json`), and for a sweep its
    per-step analysis."""
    from cfai.stats import route_summary
    from cfai.sweep import analyze, sweep_from_stored_plan

    meta = _run_or_usage(store, run_id)
    records = store.load_records(run_id)
    report = {**run_info_dict(meta), **route_summary(records)}
    sweep = sweep_from_stored_plan(meta.plan)
    if sweep is not None:
        report["sweep"] = analyze(records, sweep)
    return report


def cmd_runs_show(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    with _store(args) as store:
        report = run_report(store, args.run_id)
    if args.json:
        out.write(json.dumps(report, indent=2) + "\n")
        return EXIT_OK
    out.write(f"run {report['run_id']} ({report['status']}), model {report['model']}, {report['records']} records\n")
    if report.get("name"):
        out.write(f"name: {report['name']}\n")
    out.write(f"where: {report['connection_label']}\n\n")
    out.write(cli.format_table(report) + "\n")
    if "sweep" in report:
        out.write("\n" + format_sweep(report["sweep"]) + "\n")
    return EXIT_OK


def cmd_runs_export(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    with _store(args) as store:
        _run_or_usage(store, args.run_id)
        data = store.export_run(args.run_id, args.format)
    if args.out:
        Path(args.out).write_bytes(data)
        err.write(f"wrote {len(data):,} bytes to {args.out}\n")
    else:
        out.write(data.decode("utf-8"))
        if not data.endswith(b"\n"):
            out.write("\n")
    return EXIT_OK


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def cmd_runs_import(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    from cfai.store import StoreError

    data = _read_file(args.file)
    fmt = args.format
    if fmt == "auto":
        fmt = "json" if data.lstrip()[:1] in (b"{", b"[") else "csv"
    with _store(args) as store:
        try:
            run_id = store.import_run(data, fmt)
        except (StoreError, RunImportError) as exc:
            raise UsageError(f"{args.file}: {exc}") from None
    _report_stored(out, args, run_id, f"imported {args.file} as run {run_id}")
    return EXIT_OK


def cmd_runs_import_locust(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    from cfai.locust_engine import read_locust_records, store_locust_records
    from cfai.store import StoreError

    try:
        data = read_locust_records(args.file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not data.complete:
        err.write("warning: the records file has no complete footer (the master stopped before every worker "
                  "was done); the run is stored as cancelled.\n")
    with _store(args) as store:
        try:
            run_id = store_locust_records(store, data, name=args.name)
        except (StoreError, RunImportError) as exc:
            raise UsageError(f"{args.file}: {exc}") from None
    _report_stored(out, args, run_id, f"imported {len(data.records)} Locust records as run {run_id}")
    return EXIT_OK


def _report_stored(out: TextIO, args: argparse.Namespace, run_id: str, text: str) -> None:
    if args.json:
        out.write(json.dumps({"run_id": run_id}) + "\n")
    else:
        out.write(text + "\n")


def cmd_runs_delete(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    with _store(args) as store:
        missing = [r for r in args.run_ids if not _exists(store, r)]
        if missing:  # check all first: a typo deletes nothing
            raise UsageError(f"No stored run {', '.join(map(repr, missing))}; nothing was deleted.")
        for run_id in args.run_ids:
            store.delete_run(run_id)
    if args.json:
        out.write(json.dumps({"deleted": list(args.run_ids)}) + "\n")
    else:
        out.write(f"deleted {len(args.run_ids)} run(s)\n")
    return EXIT_OK


def _exists(store: Store, run_id: str) -> bool:
    return bool(store.has_run(run_id))


def run_info_dict(info: RunInfo) -> dict[str, Any]:
    """A stored run's metadata, JSON-ready (as `runs show --json` and `compare --json` print it)."""
    return {**asdict_shallow(info), "routes": list(info.routes), "plan": info.plan.to_dict(),
            "records": info.record_count}


# --- sweep ---------------------------------------------------------------------------------------------------
def sweep_from_args(args: argparse.Namespace) -> Any:
    from cfai.sweep import SweepPlan, parse_loads

    if args.concurrency != 1 or args.rate is not None:
        raise UsageError("A sweep sets the load per step: use --concurrencies or --rates, not --concurrency/--rate.")
    if bool(args.concurrencies) == bool(args.rates):
        raise UsageError("Give either --concurrencies (e.g. 1,2,4,8) or --rates (e.g. 5,10,20), one of the two.")
    try:
        concurrencies = parse_loads(args.concurrencies, integers=True) if args.concurrencies else ()
        rates = parse_loads(args.rates, integers=False) if args.rates else ()
    except ValueError as exc:
        raise UsageError(f"--{'concurrencies' if args.concurrencies else 'rates'}: {exc}") from None
    base = cli.plan_from_args(args)
    sweep = SweepPlan(base=base, concurrencies=tuple(int(c) for c in concurrencies), rates=rates,
                      requests_per_step=None if args.duration is not None else base.n, duration_s=args.duration)
    problems = sweep.problems()
    if problems:
        raise UsageError(" ".join(problems))
    return sweep


def format_sweep(analysis: dict[str, Any]) -> str:
    head = ("step", "load", "route", "n", "errors", "429", "p50 ms", "p95 ms", "ttft p50", "achieved/s", "note")
    rows = [head]
    for s in analysis["steps"]:
        rows.append((str(s["step"]), format_load(s["load"]), s["route"], str(s["requests"]), str(s["errors"]),
                     str(s["rate_limited"]), format_ms(s["p50_ms"]), format_ms(s["p95_ms"]), format_ms(s["ttft_p50_ms"]),
                     format_rate(s["achieved_rps"], "req/s"), "withheld: schedule not kept" if not s["schedule_kept"] else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if 0 < i < 10 and i != 2 else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]
    lines.append(f"\nknee rule: {analysis['knee_rule']}")
    for route, r in analysis["routes"].items():
        parts = [f"knee at load {format_load(r['knee_load'])}" if r["knee_step"] is not None else "no knee",
                 f"errors from load {format_load(r['errors_start_load'])}" if r["errors_start_step"] is not None
                 else "no errors",
                 f"429s from load {format_load(r['rate_limited_start_load'])}" if r["rate_limited_start_step"] is not None
                 else "no 429s"]
        lines.append(f"{route}: " + ", ".join(parts))
    return "\n".join(lines)


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    from cfai.client import Client
    from cfai.compare import connection_label
    from cfai.config import ConfigError
    from cfai.stats import route_summary
    from cfai.sweep import SweepRunner, analyze, sweep_run_plan

    sweep = sweep_from_args(args)
    _check_engine_args(args)
    with ExitStack() as stack:
        conn = cli.connection_from_args(args, env, stack)
        client = Client(conn)
        stack.callback(client.close)
        try:
            if args.engine == "locust":
                from cfai.locust_engine import locust_step_executor

                work = stack.enter_context(tempfile.TemporaryDirectory(prefix="cfai-sweep-locust-"))
                runner = SweepRunner(sweep, locust_step_executor(conn, args.workers, work),
                                     connection_label=connection_label(conn))
                SweepRunner.with_client(client, sweep)  # the same gateway-id check as the built-in engine
            else:
                runner = SweepRunner.with_client(client, sweep)
        except (ConfigError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        store = _store(args)
        stack.callback(store.close)
        store.begin_run(runner.run_id, sweep_run_plan(sweep), connection_label=runner.connection_label)

        def on_step(outcome: Any) -> None:
            if not args.quiet:
                note = " (sent all before its deadline)" if outcome.ended_early else ""
                err.write(f"step {outcome.step + 1}/{len(runner.plans)}: load {outcome.load:g}, "
                          f"{outcome.records} requests in {outcome.wall_s:.1f} s{note}\n")

        cancel = threading.Event()
        job = jobs.start(lambda _job: runner.run(on_record=lambda r: store.add_records(runner.run_id, [r]),
                                                  cancel=cancel, on_step=on_step),
                         name="cfai-sweep", cancel=cancel)
        try:
            job.wait_cancelling_on_interrupt()
        finally:
            store.finish_run(runner.run_id, cancelled=cancel.is_set())
        meta = store.run_info(runner.run_id)
        records = store.load_records(runner.run_id)
        summary = {"run_id": runner.run_id, "status": meta.status, "model": sweep.base.model,
                   "engine": args.engine, **route_summary(records), "sweep": analyze(records, sweep)}
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(f"sweep {summary['run_id']} ({summary['status']}), model {sweep.base.model}, stored in "
                  f"{store.path}\n\n{format_sweep(summary['sweep'])}\n")
    flagged = sorted({s for r in summary["sweep"]["routes"].values() for s in r["flagged_steps"]})
    if flagged:
        err.write(f"warning: step(s) {', '.join(str(s + 1) for s in flagged)} could not keep their rate; their "
                  "numbers are withheld (lower the rates or use --engine locust with more workers).\n")
    if cancel.is_set() or summary["status"] == "failed":
        return EXIT_FAILED
    return EXIT_OK


# --- compare on Locust ---------------------------------------------------------------------------------------
def _check_engine_args(args: argparse.Namespace) -> None:
    from cfai.locust_engine import MAX_WORKERS

    if getattr(args, "engine", "builtin") != "locust":
        if getattr(args, "write_locustfile", None):
            raise UsageError("--write-locustfile needs --engine locust.")
        return
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}.")


def cmd_compare_with_engine(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    """`cfai compare`: the built-in runner (cfai.cli.cmd_compare) or, with --engine locust, Locust."""
    _check_engine_args(args)
    if args.engine != "locust":
        return cli.cmd_compare(args, out, err, env)
    return cmd_compare_locust(args, out, err, env)


def cmd_compare_locust(args: argparse.Namespace, out: TextIO, err: TextIO, env: dict[str, str]) -> int:
    from cfai.compare import Runner, new_run_id
    from cfai.config import ConfigError
    from cfai.locust_engine import (
        LocustEngineError,
        LocustSettings,
        effective_workers,
        read_locust_records,
        remote_commands,
        run_locally,
        store_locust_records,
        write_locustfile,
    )
    from cfai.stats import max_in_flight, route_summary, start_lag_warning

    plan = cli.plan_from_args(args)
    run_id = new_run_id()
    if args.write_locustfile:
        conn = _connection_for_file(args, env)
        path = Path(args.write_locustfile)
        records = path.with_name(path.stem + ".records.jsonl")
        commands = remote_commands(path, plan, args.workers)
        text = "\n".join(f"{k}: {v}" for k, v in commands.items())
        workers = effective_workers(plan, args.workers)
        write_locustfile(path, plan, LocustSettings.of(conn, run_id, workers, records.name), text)
        if args.json:
            out.write(json.dumps({"locustfile": str(path), "commands": commands}, indent=2) + "\n")
        else:
            out.write(f"wrote {path}\n\n" + text + "\n")
        return EXIT_OK
    with ExitStack() as stack:
        conn = cli.connection_from_args(args, env, stack)
        from cfai.client import Client

        client = Client(conn)
        stack.callback(client.close)
        try:
            Runner(client, plan)  # the same checks the built-in engine makes (gateway id, plan)
        except (ConfigError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="cfai-locust-"))
        if not args.quiet:
            err.write(f"running {plan.total_requests} requests on Locust with {args.workers} workers ...\n")
        cancel = threading.Event()
        try:
            local = run_locally(plan, conn, run_id=run_id, workers=args.workers, work_dir=work, cancel=cancel, env=env)
        except KeyboardInterrupt:
            cancel.set()
            raise
        except LocustEngineError as exc:
            raise UsageError(str(exc)) from None
        data = read_locust_records(local.records_path)
        store = _store(args)
        stack.callback(store.close)
        stored = store_locust_records(store, data)
        meta = store.run_info(stored)
        records = store.load_records(stored)
        summary = {"run_id": stored, "status": meta.status, "model": plan.model, "engine": "locust",
                   "workers": effective_workers(plan, args.workers), **route_summary(records),
                   "cost": cli.cost_section(client, plan, records)}
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(f"run {stored} ({meta.status}) on Locust with {args.workers} workers, model {plan.model}, "
                  f"stored in {store.path}\n\n{cli.format_table(summary)}\n")
    warning = start_lag_warning(summary, open_loop=plan.rate is not None, rate=plan.rate,
                                in_flight_peak=max_in_flight(records) if plan.rate is not None else None)
    if warning:
        err.write(f"warning: {warning}\n")
    return EXIT_FAILED if meta.status in ("failed", "cancelled") else EXIT_OK


def _connection_for_file(args: argparse.Namespace, env: dict[str, str]) -> Any:
    """Where a written locustfile sends requests: the base URLs given, else Cloudflare's; ids from the
    environment. --local makes no sense for a file run elsewhere."""
    if args.local:
        raise UsageError("--write-locustfile runs elsewhere: give --api-base/--gateway-base (or Cloudflare "
                         "credentials in the environment), not --local.")
    with ExitStack() as stack:
        return cli.connection_from_args(args, env, stack)
