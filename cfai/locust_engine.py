"""Distributed load on Locust: the same Plan, sent by Locust users, timed by our Client, stored as a run.

How it fits together:
- `locustfile_source(plan, settings)` writes a self-contained locustfile: the plan and where to send are in
  the file (never a token: each machine reads CLOUDFLARE_API_TOKEN / CLOUDFLARE_GATEWAY_TOKEN from its own
  environment). It needs Locust and this package (`cfai`) importable, nothing else.
- In the file, `build_user_class` makes a Locust `User` whose one task sends the plan's next request with
  the comparison runner's own per-request code (`Runner.execute_one`: same routes, headers, cache modes,
  streaming, the same Record fields, cache status and token timing), and fires Locust's `request` event so
  Locust's own statistics see every request.
- Work is split the way the runner splits it: the plan's interleaved job list, worker k of W taking jobs
  k, k + W, ...; warm-ups finish on a worker before its measured jobs start. Closed loop: `concurrency`
  users in all. Open loop: enough users to keep the schedule, each job started at its scheduled time.
- Workers send their records to the master over Locust's own message transport (custom messages
  `cfai_records`, `cfai_done`); the master writes them as JSON lines (`records_path`) and stops the test
  when every worker is done (`--run-time` is only the safety limit). `import_locust_records` turns that
  file into a normal run in the history.
- `run_locally` starts `locust --master --headless` and N `locust --worker` processes on 127.0.0.1, waits
  for the master, and imports the result. `remote_commands` prints the command lines for other machines.

Start times: each worker stamps records on its own monotonic clock from its start, and reports that start
as epoch seconds; the importer puts all workers on one time line (seconds from the earliest worker start).
On one machine that is exact; across machines it is as good as their clocks' agreement (NTP).
"""

from __future__ import annotations

import json
import os
import pprint
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cfai.compare import OPEN_LOOP_MAX_IN_FLIGHT, RECORD_COLUMNS, Plan, Record, connection_label
from cfai.config import (
    ENV_API_TOKEN,
    ENV_GATEWAY_TOKEN,
    LOCAL_API_TOKEN,
    Connection,
)
from cfai.token_timing import TOKEN_TIMING_FIELDS

RECORDS_FORMAT = "workers-ai-lab/locust-records"
RECORDS_VERSION = 1
MSG_RECORDS, MSG_DONE = "cfai_records", "cfai_done"
ENV_RECORDS_PATH = "CFAI_LOCUST_RECORDS"  # overrides the records file named in the locustfile
ENV_WORKERS = "CFAI_LOCUST_WORKERS"  # overrides the worker count named in the locustfile
BATCH_SIZE = 50
MAX_WORKERS = 64


class LocustEngineError(RuntimeError):
    """Locust could not run the plan (it did not start, or exited without results); the message says why."""


@dataclass(frozen=True)
class LocustSettings:
    """Where the locustfile sends requests and what it calls the run. Holds no secret."""

    run_id: str
    workers: int
    records_path: str
    mode: str
    account_id: str
    gateway_id: str
    api_base_url: str
    gateway_base_url: str
    connection_label: str = ""

    @classmethod
    def of(cls, connection: Connection, run_id: str, workers: int, records_path: str | Path) -> LocustSettings:
        return cls(run_id=run_id, workers=workers, records_path=str(records_path), mode=connection.mode,
                   account_id=connection.account_id, gateway_id=connection.gateway_id,
                   api_base_url=connection.api_base_url, gateway_base_url=connection.gateway_base_url,
                   connection_label=connection_label(connection))

    def connection(self, env: Mapping[str, str]) -> Connection:
        """The connection on this machine: the file's URLs and ids, the token from the environment (always the
        emulator's well-known local token in local mode: a real token in the environment is not for it)."""
        token = LOCAL_API_TOKEN if self.mode == "local" else (env.get(ENV_API_TOKEN) or "")
        return Connection(mode=self.mode, account_id=self.account_id, api_token=token,  # type: ignore[arg-type]
                          gateway_id=self.gateway_id, gateway_token=env.get(ENV_GATEWAY_TOKEN) or None,
                          api_base_url=self.api_base_url, gateway_base_url=self.gateway_base_url)


def users_for(plan: Plan) -> int:
    """Locust users in all: the concurrency (closed loop) or enough to keep an open loop's schedule."""
    if plan.is_open_loop:
        return max(1, min(OPEN_LOOP_MAX_IN_FLIGHT, plan.total_requests))
    return plan.concurrency


# --- the locustfile ------------------------------------------------------------------------------------------
_TEMPLATE = '''"""Locustfile for Workers AI Lab run {run_id}, written by `cfai`. Self-contained: the plan and
where to send it are below; the API token comes from CLOUDFLARE_API_TOKEN on each machine (never this file).
Needs `locust` and the `cfai` package (this repository: `pip install -e .`).

{commands}
"""

from cfai.locust_engine import build_user_class

PLAN = {plan}
SETTINGS = {settings}

CfaiUser = build_user_class(PLAN, SETTINGS)
'''


def locustfile_source(plan: Plan, settings: LocustSettings, commands: str = "") -> str:
    plan_dict = plan.to_dict()  # secret-bearing headers are dropped by Plan.to_dict
    return _TEMPLATE.format(run_id=settings.run_id, commands=commands.replace('"""', "'''"),
                            plan=pprint.pformat(plan_dict, sort_dicts=False),
                            settings=pprint.pformat(asdict(settings), sort_dicts=False))


def write_locustfile(path: str | Path, plan: Plan, settings: LocustSettings, commands: str = "") -> Path:
    path = Path(path)
    path.write_text(locustfile_source(plan, settings, commands), encoding="utf-8")
    return path


def remote_commands(locustfile: str | Path, plan: Plan, workers: int, *, master_host: str = "MASTER_HOST",
                    master_port: int = 5557, run_time_s: int | None = None) -> dict[str, str]:
    """The command lines to run this plan on other machines: one master, `workers` workers, web UI off."""
    users = users_for(plan)
    workers = effective_workers(plan, workers)
    limit = run_time_s or safety_run_time(plan)
    name = shlex.quote(str(Path(locustfile).name))
    return {
        "master": (f"locust -f {name} --master --headless --master-bind-port {master_port} "
                   f"--expect-workers {workers} -u {users} -r {users} --run-time {limit}s --only-summary"),
        "worker": f"CLOUDFLARE_API_TOKEN=... locust -f {name} --worker --master-host {master_host} "
                  f"--master-port {master_port}",
        "import": f"cfai runs import-locust {shlex.quote(Path(locustfile).stem + '.records.jsonl')}",
    }


def effective_workers(plan: Plan, workers: int) -> int:
    """Workers that will get a user: Locust spreads users round-robin, and a worker without one would hold
    its share of the jobs forever. So never more workers than users (nor than jobs)."""
    return max(1, min(workers, users_for(plan), plan.total_requests))


def safety_run_time(plan: Plan) -> int:
    """Seconds after which the master stops whatever happens: every request timing out in turn, bounded."""
    per_user = plan.total_requests / max(1, users_for(plan))
    paced = plan.total_requests / plan.rate if plan.rate else 0
    return int(min(24 * 3600, 30 + paced + per_user * plan.timeout_s))


# --- inside Locust: the user class ---------------------------------------------------------------------------
class _WorkerState:
    """One per Locust process: its share of the jobs, its runner, its unsent records."""

    def __init__(self, environment: Any, plan: Plan, settings: LocustSettings) -> None:
        import gevent.event

        from cfai.client import Client
        from cfai.compare import Runner, interleaved_jobs

        runner = environment.runner
        local = type(runner).__name__ == "LocalRunner"
        self.workers = 1 if local else int(os.environ.get(ENV_WORKERS) or settings.workers)
        self.index = 0 if local else int(getattr(runner, "worker_index", 0))
        self.environment = environment
        self.plan = plan
        jobs = interleaved_jobs(plan.routes, plan.n, plan.warmup)
        mine = jobs[self.index::self.workers]
        self.jobs = iter(mine)
        self.warmups_left = sum(1 for j in mine if j.warmup)
        self.measured_index = {j.seq: k for k, j in enumerate(j for j in jobs if not j.warmup)}
        self.warm = gevent.event.Event()
        if self.warmups_left == 0:
            self.warm.set()
        self.client = Client(settings.connection(os.environ), pool_size=max(4, users_for(plan)))
        self.runner = Runner(self.client, plan, run_id=settings.run_id)
        self.runner.start_clock()  # the runner's clock origin: this worker's start
        self.t0_epoch = time.time()
        self.measured_start: float | None = None
        self.pending: list[dict[str, Any]] = []
        self.in_flight = 0
        self.sent = 0
        self.done_sent = False

    def next_job(self) -> Any:
        return next(self.jobs, None)

    def execute(self, job: Any) -> None:
        if not job.warmup:
            self.warm.wait()
        intended = self.runner.now()
        if self.plan.is_open_loop and not job.warmup:
            if self.measured_start is None:
                self.measured_start = self.runner.now()
            intended = self.measured_start + self.measured_index[job.seq] / float(self.plan.rate or 1.0)
            wait = intended - self.runner.now()
            if wait > 0:
                import gevent

                gevent.sleep(wait)
        self.in_flight += 1
        try:
            self.runner.execute_one(job, intended, self._on_record)  # the runner's own per-request code
        finally:
            self.in_flight -= 1
        if job.warmup:
            self.warmups_left -= 1
            if self.warmups_left <= 0:
                self.warm.set()

    def _on_record(self, record: Record) -> None:
        self.pending.append(asdict(record))  # every Record field, token timing included
        error = None if record.ok else RuntimeError(record.error_message or f"HTTP {record.status}")
        self.environment.events.request.fire(
            request_type="POST", name=record.route + (f" {record.cache_status}" if record.cache_status else ""),
            response_time=record.total_ms or 0.0, response_length=record.bytes, exception=error,
            context={"warmup": record.warmup, "seq": record.seq},
        )
        if len(self.pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.sent += len(batch)
        self.environment.runner.send_message(MSG_RECORDS, {"worker": self.index, "t0_epoch": self.t0_epoch,
                                                           "records": batch})

    def finish(self) -> None:
        """Called by each user whose job queue ran dry; the last one in reports this worker done."""
        if self.done_sent or self.in_flight:
            return
        self.done_sent = True
        self.flush()
        self.environment.runner.send_message(MSG_DONE, {"worker": self.index, "records": self.sent})


class _MasterSink:
    """On the master (or a single local process): write every record line, stop when all workers are done."""

    def __init__(self, environment: Any, plan: Plan, settings: LocustSettings) -> None:
        runner = environment.runner
        local = type(runner).__name__ == "LocalRunner"
        self.expected = 1 if local else int(os.environ.get(ENV_WORKERS) or settings.workers)
        self.environment = environment
        self.path = Path(os.environ.get(ENV_RECORDS_PATH) or settings.records_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("w", encoding="utf-8")
        self.done: set[int] = set()
        self.count = 0
        self._write({"format": RECORDS_FORMAT, "version": RECORDS_VERSION, "run_id": settings.run_id,
                     "plan": plan.to_dict(), "connection_label": settings.connection_label,
                     "started_at": time.time(), "workers": self.expected})
        runner.register_message(MSG_RECORDS, self.on_records)
        runner.register_message(MSG_DONE, self.on_done)
        environment.events.quitting.add_listener(self.on_quitting)

    def _write(self, doc: dict[str, Any]) -> None:
        self.file.write(json.dumps(doc, allow_nan=False, default=_json_default) + "\n")
        self.file.flush()

    def on_records(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data
        for row in data["records"]:
            self._write({"worker": data["worker"], "t0_epoch": data["t0_epoch"], "record": row})
            self.count += 1

    def on_done(self, environment: Any, msg: Any, **_: Any) -> None:
        self.done.add(int(msg.data["worker"]))
        if len(self.done) >= self.expected:
            import gevent

            gevent.spawn(environment.runner.quit)

    def on_quitting(self, environment: Any, **_: Any) -> None:
        if not self.file.closed:
            self._write({"finished_at": time.time(), "workers_done": sorted(self.done), "records": self.count,
                         "complete": len(self.done) >= self.expected})
            self.file.close()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def build_user_class(plan_dict: Mapping[str, Any], settings_dict: Mapping[str, Any]) -> type:
    """The Locust User class for a plan (called from a generated locustfile)."""
    from locust import User, constant, events, task

    plan = Plan.from_dict(plan_dict).validate()
    settings = LocustSettings(**settings_dict)
    holder: dict[str, Any] = {}

    @events.init.add_listener
    def on_init(environment: Any, **_: Any) -> None:
        kind = type(environment.runner).__name__
        if kind in ("MasterRunner", "LocalRunner"):
            holder["sink"] = _MasterSink(environment, plan, settings)

    def state(environment: Any) -> _WorkerState:
        if "state" not in holder:  # first task on this process: the worker index is known by now
            holder["state"] = _WorkerState(environment, plan, settings)
        return holder["state"]

    class CfaiUser(User):
        wait_time = constant(0)

        @task
        def send(self) -> None:
            import gevent

            s = state(self.environment)
            job = s.next_job()
            if job is None:
                s.finish()
                gevent.sleep(0.05)  # idle until the master stops the test
                return
            s.execute(job)

    return CfaiUser


# --- running it: locally with N workers, and importing the results ------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _locust_command() -> list[str]:
    return [sys.executable, "-m", "locust"]


@dataclass
class LocalLocustRun:
    run_id: str
    records_path: Path
    locustfile: Path
    returncode: int
    log_path: Path
    wall_s: float


def run_locally(
    plan: Plan,
    connection: Connection,
    *,
    run_id: str,
    workers: int = 2,
    work_dir: str | Path | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> LocalLocustRun:
    """Run the plan on Locust: one headless master and `workers` worker processes on 127.0.0.1.

    Returns where the records landed; raises LocustEngineError when Locust did not produce a complete
    records file (its log is named in the message). `cancel` stops master and workers (records so far kept).
    """
    plan.validate()
    if not 1 <= workers <= MAX_WORKERS:
        raise LocustEngineError(f"Locust workers must be between 1 and {MAX_WORKERS}.")
    workers = effective_workers(plan, workers)
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="cfai-locust-"))
    work.mkdir(parents=True, exist_ok=True)
    records_path = work / f"{run_id}.records.jsonl"
    settings = LocustSettings.of(connection, run_id, workers, records_path)
    locustfile = write_locustfile(work / f"locustfile_{run_id.replace('-', '_')}.py", plan, settings)
    port = _free_port()
    users = users_for(plan)
    limit = safety_run_time(plan)
    child_env = {k: v for k, v in (env if env is not None else os.environ).items()}
    child_env.pop(ENV_RECORDS_PATH, None)
    child_env[ENV_WORKERS] = str(workers)
    # The children import this very `cfai` (a checkout may differ from the one installed in the venv).
    package_root = str(Path(__file__).resolve().parent.parent)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, child_env.get("PYTHONPATH")) if p)
    # The children get exactly the connection's tokens, to our own children only, never into a file: a token
    # left in the inherited environment (the user's real one in local mode, a gateway token the connection
    # does not use) would otherwise be read by the workers and sent to the connection's base URLs.
    child_env.pop(ENV_API_TOKEN, None)
    child_env.pop(ENV_GATEWAY_TOKEN, None)
    if connection.api_token and connection.mode != "local":
        child_env[ENV_API_TOKEN] = connection.api_token
    if connection.gateway_token:
        child_env[ENV_GATEWAY_TOKEN] = connection.gateway_token
    common = ["-f", str(locustfile), "--skip-log-setup"]
    master_cmd = [*_locust_command(), *common, "--master", "--headless", "--master-bind-host", "127.0.0.1",
                  "--master-bind-port", str(port), "--expect-workers", str(workers), "-u", str(users),
                  "-r", str(users), "--run-time", f"{limit}s", "--only-summary", "--exit-code-on-error", "0"]
    worker_cmd = [*_locust_command(), *common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    log_path = work / f"{run_id}.locust.log"
    started = time.monotonic()
    deadline = started + (timeout_s if timeout_s is not None else limit + 30)
    with log_path.open("w", encoding="utf-8") as log:
        master = subprocess.Popen(master_cmd, cwd=work, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        procs = [master]
        try:
            for _ in range(workers):
                procs.append(subprocess.Popen(worker_cmd, cwd=work, env=child_env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
            while master.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    master.send_signal(signal.SIGTERM)  # the master tells its workers to quit, writes its footer
                    try:
                        master.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        master.kill()
                    break
                time.sleep(0.05)
        finally:
            for proc in procs[1:]:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            if master.poll() is None:
                master.kill()
                master.wait()
    if not records_path.exists():
        raise LocustEngineError(f"Locust wrote no records (exit code {master.returncode}); see {log_path}.")
    return LocalLocustRun(run_id=run_id, records_path=records_path, locustfile=locustfile,
                          returncode=master.returncode or 0, log_path=log_path, wall_s=time.monotonic() - started)


@dataclass
class LocustRecords:
    """A records file read back: the header, the records on one time line, and the footer (if written)."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    footer: dict[str, Any] | None

    @property
    def complete(self) -> bool:
        return bool(self.footer and self.footer.get("complete"))

    @property
    def plan(self) -> Plan:
        return Plan.from_dict(self.header["plan"])

    def record_objects(self) -> list[Record]:
        fields: list[dict[str, Any]] = [{k: r.get(k) for k in RECORD_COLUMNS} for r in self.records]
        return [Record(**f) for f in fields]


def read_locust_records(path: str | Path) -> LocustRecords:
    """Parse a records file written by the master. Raises ValueError naming the first bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not lines:
        raise ValueError(f"{path} is empty: not a Locust records file from Workers AI Lab.")
    docs: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path} line {number} is not JSON ({exc}).") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{path} line {number} is not a JSON object.")
        docs.append(doc)
    header = docs[0]
    if header.get("format") != RECORDS_FORMAT:
        raise ValueError(f"{path} is not a Locust records file from Workers AI Lab (no \"format\": "
                         f"\"{RECORDS_FORMAT}\" header).")
    if int(header.get("version") or 0) > RECORDS_VERSION:
        raise ValueError(f"{path} comes from a newer Workers AI Lab; upgrade to import it.")
    rows = [d for d in docs[1:] if "record" in d]
    footer = next((d for d in docs[1:] if "finished_at" in d), None)
    starts = [float(d["t0_epoch"]) for d in rows if isinstance(d.get("t0_epoch"), int | float)]
    origin = min(starts) if starts else 0.0
    records: list[dict[str, Any]] = []
    for number, d in enumerate(rows, start=1):
        row = d["record"]
        if not isinstance(row, dict):
            raise ValueError(f"{path}: record {number} is not an object.")
        shift = float(d.get("t0_epoch") or origin) - origin
        row = dict(row)
        row["run_id"] = header.get("run_id")
        for key in ("intended_start_s", "actual_start_s"):
            if isinstance(row.get(key), int | float):
                row[key] = float(row[key]) + shift
        records.append(row)
    records.sort(key=lambda r: (r.get("seq") is None, r.get("seq")))
    return LocustRecords(header=header, records=records, footer=footer)


def store_locust_records(store: Any, data: LocustRecords, *, name: str | None = None) -> str:
    """Write a records file's run into the history (through the store's own import, so it is checked like
    any import); returns the stored run id (a fresh one when the id is already taken)."""
    from cfai.compare import run_status
    from cfai.run_import import EXPORT_FORMAT, EXPORT_VERSION

    plan = data.plan
    if name:
        plan.name = name
    objects = data.record_objects()
    status = run_status(objects, cancelled=not data.complete)
    doc = {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
        "run": {"run_id": data.header.get("run_id"), "name": plan.name, "created_at": data.header.get("started_at"),
                "finished_at": (data.footer or {}).get("finished_at"), "status": status,
                "model": plan.model, "connection_label": data.header.get("connection_label") or "",
                "plan": plan.to_dict()},
        "records": [{k: r.get(k) for k in RECORD_COLUMNS} for r in data.records],
    }
    return store.import_run(json.dumps(doc, allow_nan=False, default=_json_default).encode(), "json")


def token_timing_rows(data: LocustRecords) -> list[dict[str, Any]]:
    """seq, route, cache_status and the TOKEN_TIMING_FIELDS of every record (the records carry them, as the
    store does; a short view for a quick look)."""
    keep = ("seq", "route", "cache_status", "warmup", "ok", *TOKEN_TIMING_FIELDS)
    return [{k: r.get(k) for k in keep} for r in data.records]


def locust_step_executor(connection: Connection, workers: int, work_dir: str | Path | None = None,
                         env: Mapping[str, str] | None = None) -> Callable[..., list[Record]]:
    """A cfai.sweep StepExecutor that runs each step on Locust (one master + workers per step)."""

    def execute(plan: Plan, step_run_id: str, cancel: threading.Event,
                on_record: Callable[[Record], None]) -> list[Record]:
        local = run_locally(plan, connection, run_id=step_run_id, workers=workers, work_dir=work_dir,
                            cancel=cancel, env=env)
        records = read_locust_records(local.records_path).record_objects()
        for record in records:
            on_record(record)
        return records

    return execute
