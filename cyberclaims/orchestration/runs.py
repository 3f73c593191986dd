"""Runs of the cycle in this process, and what a dead run leaves behind.

A run started by `cyberclaims run` records which process executes it (run tags: pid, host, the process's
start time). A run whose process is gone (killed with SIGKILL, the machine rebooted) stays STARTED in the
Dagster instance and keeps its `duckdb_writer` pool slot, so every later run would wait for ever:
`reap_dead_runs` marks such runs FAILURE and frees their slots, and kills a dbt child they left holding
the warehouse lock. It runs before every run and while a run waits for the pool.

A run waiting for the pool says which run holds it, and gives up after CYBERCLAIMS_POOL_WAIT_SECONDS
(default DEFAULT_POOL_WAIT_SECONDS) with a clear error instead of hanging.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from cyberclaims.orchestration.defs.resources import WRITER_POOL

log = logging.getLogger("cyberclaims.runs")

PID_TAG = "cyberclaims/pid"
HOST_TAG = "cyberclaims/host"
PROCESS_START_TAG = "cyberclaims/process_start"  # the process's start time (/proc), against pid reuse
# Inherited by the run's children (dbt): names the run process that started them.
RUN_PID_ENV = "CYBERCLAIMS_RUN_PID"

POOL_WAIT_ENV = "CYBERCLAIMS_POOL_WAIT_SECONDS"
DEFAULT_POOL_WAIT_SECONDS = 1800
POLL_SECONDS = 2.0

UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]


def pool_wait_seconds() -> float:
    """How long a run waits for the writer pool before giving up (CYBERCLAIMS_POOL_WAIT_SECONDS)."""
    raw = os.environ.get(POOL_WAIT_ENV)
    if not raw:
        return float(DEFAULT_POOL_WAIT_SECONDS)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{POOL_WAIT_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{POOL_WAIT_ENV}={raw!r} must be positive")
    return value


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (/proc/<pid>/stat field 22), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def process_tags() -> dict[str, str]:
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    start = _process_start(os.getpid())
    if start:
        tags[PROCESS_START_TAG] = start
    return tags


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether process `pid` still runs (and is the process that started with `start`, when given)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    if _process_state(pid) in ("Z", "X"):
        return False
    now = _process_start(pid)
    return not (start and now and now != start)


def _run_process(run: dg.DagsterRun, instance: dg.DagsterInstance | None = None) -> tuple[int, str | None] | None:
    """The pid (and start time) of the process executing a run on this host, None if not known.

    A run of `cyberclaims run` names it in its tags; for another run (the UI's, the daemon's) of this
    instance, the pid its executor recorded ("Executing steps in process (pid: N)") is taken."""
    tags = run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) != socket.gethostname() or not tags[PID_TAG].isdigit():
            return None
        return int(tags[PID_TAG]), tags.get(PROCESS_START_TAG)
    if instance is None:
        return None
    pid = None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        value = getattr(data, "metadata", {}).get("pid") if data is not None else None
        text = str(getattr(value, "value", value) or "")
        if text.isdigit():  # the first: the run worker's (later ones may be its step processes')
            pid = int(text)
            break
    return (pid, None) if pid else None


def _orphans_of(pid: int) -> list[int]:
    """Processes started by the (dead) run process `pid` that still run: they carry RUN_PID_ENV=pid."""
    marker = f"{RUN_PID_ENV}={pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _kill_orphans(run_id: str, pid: int) -> list[int]:
    killed = []
    for child in _orphans_of(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            continue
        killed.append(child)
        log.warning(f"killed process {child} (e.g. dbt, holding the warehouse lock) left by dead run {run_id}")
    return killed


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark FAILURE every unfinished run started on this host whose process is gone, free its concurrency
    slots and kill the children it left; free the slots still held by finished runs. Returns the runs reaped."""
    reaped = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        process = _run_process(run, instance)
        if process is None or process_alive(*process):
            continue
        pid = process[0]
        _kill_orphans(run.run_id, pid)
        instance.report_run_failed(
            run, message=f"The process that ran it (pid {pid}) is gone (killed?): marked failed by cyberclaims, "
                         f"its {WRITER_POOL} pool slots freed.")
        freed = instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log.warning(f"run {run.run_id} of job '{run.job_name}' (pid {pid}) died while {run.status.value}: "
                    f"marked FAILURE, {freed or 0} pool slot(s) freed")
        reaped.append(run.run_id)
    # Slots of runs that ended without freeing them (e.g. marked failed elsewhere).
    if instance.event_log_storage.supports_global_concurrency_limits:
        holders = instance.event_log_storage.get_concurrency_run_ids()
        if holders:
            for record in instance.get_run_records(
                filters=dg.RunsFilter(run_ids=list(holders))
            ):
                run = record.dagster_run
                if run.status not in UNFINISHED and instance.event_log_storage.free_concurrency_slots_for_run(
                    run.run_id
                ):
                    log.warning(f"freed the pool slots still held by finished run {run.run_id} ({run.status.value})")
    return reaped


def describe_holders(instance: dg.DagsterInstance, pool: str = WRITER_POOL, except_run: str | None = None) -> str:
    """Who holds the pool's slots: run id, job, step, and its process when started here."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    parts = []
    for slot in info.claimed_slots:
        if slot.run_id == except_run:
            continue
        run = instance.get_run_by_id(slot.run_id)
        where = ""
        if run is not None:
            process = _run_process(run, instance)
            where = f", job '{run.job_name}', {run.status.value}"
            if process:
                where += f", pid {process[0]} {'alive' if process_alive(*process) else 'gone'}"
        parts.append(f"run {slot.run_id} (step {slot.step_key}{where})")
    return "; ".join(parts) or "no run (a slot is being handed over)"


@dataclass
class _WaitState:
    gave_up: str | None = None


def _stop_main_thread(main: int, stop: threading.Event, why: str) -> None:
    """End the run executing in the main thread: Dagster's in-process executor does not heed SIGINT while a
    step waits for a pool slot, so PoolWaitTimeout is raised in that thread (it next runs Python code within
    a pending-claim interval); the run fails as on any error and frees its pending claim. If it is still
    there after a minute, the process exits (it holds no warehouse connection while waiting)."""
    # Only a class can be raised in another thread: one whose message says why (shown in the run's failure).
    timeout = type("PoolWaitTimeout", (PoolWaitTimeout,), {"__init__": lambda self: RuntimeError.__init__(self, why)})
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(main), ctypes.py_object(timeout))
    if not stop.wait(60):
        sys.stderr.flush()
        os._exit(1)


def _watch_pool(instance_ref, run_id: str, limit: float, stop: threading.Event, state: _WaitState,
                main: int) -> None:
    """While the run waits for the writer pool: say who holds it, reap dead holders, give up after `limit`."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        storage = instance.event_log_storage
        waiting_since: float | None = None
        said = 0.0
        while not stop.wait(POLL_SECONDS):
            try:
                info = storage.get_concurrency_info(WRITER_POOL)
            except Exception:  # the storage is busy or going away with the run: look again
                continue
            if run_id not in info.pending_run_ids:
                waiting_since = None
                continue
            now = time.monotonic()
            if waiting_since is None:
                waiting_since, said = now, 0.0
            if reap_dead_runs(instance):
                continue
            waited = now - waiting_since
            if waited >= limit:
                state.gave_up = (f"run {run_id} gave up after waiting {waited:.0f}s for the {WRITER_POOL} pool "
                                 f"({POOL_WAIT_ENV}={limit:g}), held by {describe_holders(instance, except_run=run_id)}")
                log.error(state.gave_up)
                _stop_main_thread(main, stop, state.gave_up)
                return
            if now - said >= 60 or not said:
                said = now
                log.warning(f"run {run_id} waits for the {WRITER_POOL} pool, held by "
                            f"{describe_holders(instance, except_run=run_id)}; gives up in {limit - waited:.0f}s "
                            f"({POOL_WAIT_ENV})")


class PoolWaitTimeout(RuntimeError):
    """The run waited longer than CYBERCLAIMS_POOL_WAIT_SECONDS for the writer pool."""


def execute_job(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    run_config: Mapping | None = None,
    tags: Mapping[str, str] | None = None,
    wait_seconds: float | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute a job in this process as `cyberclaims run` does: dead runs reaped first, this process recorded
    in the run's tags, the wait for the writer pool bounded. Raises PoolWaitTimeout when it gave up."""
    from dagster._core.utils import make_new_run_id

    limit = pool_wait_seconds() if wait_seconds is None else wait_seconds
    reap_dead_runs(instance)
    run_id = make_new_run_id()
    os.environ[RUN_PID_ENV] = str(os.getpid())
    stop, state = threading.Event(), _WaitState()
    watcher = threading.Thread(target=_watch_pool,
                               args=(instance.get_ref(), run_id, limit, stop, state, threading.get_ident()),
                               name="cyberclaims-pool-watch", daemon=True)
    watcher.start()
    try:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                        run_id=run_id, tags={**(tags or {}), **process_tags()})
    except BaseException:
        if state.gave_up is None:
            raise
        result = None  # raised in this thread on giving up
    finally:
        stop.set()
        watcher.join(timeout=10)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    if state.gave_up is not None:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in UNFINISHED:
            instance.report_run_failed(run, message=state.gave_up)
        raise PoolWaitTimeout(state.gave_up)
    return result


def build_dead_run_sensor() -> dg.SensorDefinition:
    """With the UI's daemon running, a run that died (its process killed, say) is reaped within a minute
    instead of at the next `cyberclaims run`: the same `reap_dead_runs`, on the daemon's host. It starts no run."""

    @dg.sensor(
        name="dead_run_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks FAILURE the runs whose process is gone and frees their duckdb_writer pool slots "
                    "(runs nothing).",
    )
    def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        reaped = reap_dead_runs(context.instance)
        return dg.SkipReason(f"reaped dead runs: {', '.join(reaped)}" if reaped else "no dead run")

    return dead_run_sensor
