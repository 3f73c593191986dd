"""Runs that die, wait or race, with real processes on a real Dagster instance (DAGSTER_HOME as the CLI uses):
a run killed with SIGKILL never blocks the writer pool for good, a run waiting for the pool says who holds it
and gives up after CYBERCLAIMS_POOL_WAIT_SECONDS, and two runs with the same inputs publish one version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cyberclaims.orchestration.defs.resources import WRITER_POOL
from cyberclaims.orchestration.runs import PID_TAG, process_alive

# A run of a one-asset job in the writer pool, executed as `cyberclaims run` executes its job.
HOLDER = r"""
import os, subprocess, sys, time
import dagster as dg
from cyberclaims.settings import ensure_dagster_home
from cyberclaims.orchestration.defs.resources import WRITER_POOL
from cyberclaims.orchestration.runs import PoolWaitTimeout, execute_job

hold, child = float(sys.argv[1]), sys.argv[2] == "child"

@dg.asset(pool=WRITER_POOL)
def writer(context):
    if child:  # a child like dbt, started without dying with its parent
        grandchild = subprocess.Popen(["sleep", "300"])
        print("CHILD", grandchild.pid, flush=True)
    print("HOLDING", context.run_id, flush=True)
    time.sleep(hold)

ensure_dagster_home()
job = dg.Definitions(assets=[writer], jobs=[dg.define_asset_job("writer_job", [writer])]).resolve_job_def("writer_job")
with dg.DagsterInstance.get() as instance:
    try:
        result = execute_job(job, instance)
    except PoolWaitTimeout as exc:
        print("GAVE UP", exc, flush=True)
        sys.exit(3)
print("RESULT", result.run_id, result.success, flush=True)
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    env["CYBERCLAIMS_DATA_DIR"] = str(tmp_path / "data")
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    env["CYBERCLAIMS_HMAC_KEY"] = os.environ.get("CYBERCLAIMS_HMAC_KEY", "x" * 32)
    return env


def start_holder(env, hold: float, child: bool = False) -> tuple[subprocess.Popen, str, int | None]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold), "child" if child else "-"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grandchild = None
    for line in proc.stdout:
        if line.startswith("CHILD"):
            grandchild = int(line.split()[1])
        if line.startswith("HOLDING"):
            return proc, line.split()[1], grandchild
    raise AssertionError("holder never held the pool: " + proc.stderr.read())


def instance_of(env) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_a_run_killed_with_sigkill_is_failed_and_frees_the_writer_pool(env):
    holder, dead_run, grandchild = start_holder(env, hold=600, child=True)
    with instance_of(env) as instance:
        assert instance.get_run_by_id(dead_run).tags[PID_TAG] == str(holder.pid)
        assert dead_run in instance.event_log_storage.get_concurrency_info(WRITER_POOL).active_run_ids
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert process_alive(grandchild)  # the orphan still runs (as a dbt child would, holding the warehouse)

    started = time.monotonic()
    nxt = subprocess.run([sys.executable, "-c", HOLDER, "0", "-"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert "RESULT" in nxt.stdout and nxt.stdout.strip().endswith("True")
    assert time.monotonic() - started < 120
    # One line names the dead run; its orphan was killed.
    assert sum(dead_run in line and "marked FAILURE" in line for line in nxt.stderr.splitlines()) == 1, nxt.stderr
    assert f"killed process {grandchild}" in nxt.stderr
    deadline = time.monotonic() + 10
    while process_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_alive(grandchild)
    with instance_of(env) as instance:
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        info = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
        assert not info.claimed_slots and not info.pending_steps


def test_the_daemon_sensor_reaps_a_dead_run_without_waiting_for_the_next_cli_run(env):
    from cyberclaims.orchestration.definitions import defs
    from cyberclaims.orchestration.runs import build_dead_run_sensor

    assert defs().resolve_sensor_def("dead_run_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    holder, dead_run, _ = start_holder(env, hold=600)
    with instance_of(env) as instance:
        sensor = build_dead_run_sensor()
        assert "no dead run" in sensor(dg.build_sensor_context(instance=instance)).skip_message
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.STARTED  # alive: left alone
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        skip = sensor(dg.build_sensor_context(instance=instance))
        assert skip.skip_message == f"reaped dead runs: {dead_run}"
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        info = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
        assert not info.claimed_slots and not info.pending_steps


def test_dbt_started_by_a_run_dies_with_it(tmp_path):
    """dbt is started through dbt-with-parent (setpriv --pdeathsig KILL): killing the run kills dbt."""
    from cyberclaims.orchestration.defs.transformation import DBT_WITH_PARENT, dbt_executable

    assert dbt_executable() == str(DBT_WITH_PARENT)
    run = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; p = subprocess.Popen(sys.argv[1:]); "
                               "print(p.pid, flush=True); time.sleep(600)", str(DBT_WITH_PARENT), "300"],
        env={**os.environ, "CYBERCLAIMS_DBT_EXECUTABLE": "sleep"}, stdout=subprocess.PIPE, text=True,
    )
    dbt = int(run.stdout.readline())
    time.sleep(0.5)  # past the exec of setpriv
    assert process_alive(dbt)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    deadline = time.monotonic() + 10
    while process_alive(dbt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(dbt)


def test_a_run_waiting_for_the_pool_names_the_holder_and_gives_up(env):
    """`cyberclaims run` waiting for the pool held by a live run says so and fails after the stated time."""
    holder, holding_run, _ = start_holder(env, hold=600)
    try:
        started = time.monotonic()
        waiter = subprocess.run([sys.executable, "-m", "cyberclaims.cli", "run", "--job", "publish"],
                                env={**env, "CYBERCLAIMS_POOL_WAIT_SECONDS": "6"}, capture_output=True, text=True,
                                timeout=300)
        took = time.monotonic() - started
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert waiter.returncode == 1, waiter.stdout + waiter.stderr
    assert f"waits for the {WRITER_POOL} pool, held by run {holding_run}" in waiter.stderr
    assert "gave up after waiting" in waiter.stderr and "CYBERCLAIMS_POOL_WAIT_SECONDS=6" in waiter.stderr
    assert waiter.stderr.count("Error: run ") == 1  # the CLI's one clear error line
    assert took < 240
    with instance_of(env) as instance:
        runs = instance.get_run_records(filters=dg.RunsFilter(job_name="publish"))
        assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.FAILURE]
        assert instance.get_run_by_id(holding_run).status == dg.DagsterRunStatus.STARTED
        info = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
        assert info.active_run_ids == {holding_run} and {p.run_id for p in info.pending_steps} == {holding_run}


def test_the_pool_wait_must_be_a_positive_number(monkeypatch):
    from cyberclaims.orchestration.runs import DEFAULT_POOL_WAIT_SECONDS, pool_wait_seconds

    monkeypatch.delenv("CYBERCLAIMS_POOL_WAIT_SECONDS", raising=False)
    assert pool_wait_seconds() == DEFAULT_POOL_WAIT_SECONDS
    monkeypatch.setenv("CYBERCLAIMS_POOL_WAIT_SECONDS", "soon")
    with pytest.raises(ValueError, match="CYBERCLAIMS_POOL_WAIT_SECONDS"):
        pool_wait_seconds()


PUBLISHER = r"""
import json, sys, time
from pathlib import Path
from cyberclaims.orchestration.defs.transformation.project import dbt_project
from cyberclaims.publication.publish import publish, published_tables_from_manifest
warehouse, out, extra, at = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, at - time.time()))
result = publish(warehouse, out, published_tables_from_manifest(dbt_project().manifest_path), extra)
print("PUBLISHED" if result.published else "NOTHING", result.version, flush=True)
"""


def test_two_simultaneous_publications_of_the_same_inputs_publish_one_version(sample, tmp_path):
    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import existing_versions, publication_metadata, published_version

    out = tmp_path / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    assert extra["inputs_fingerprint"]
    at = time.time() + 8  # both start publishing at the same moment, once imported
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISHER, str(sample.warehouse_path), str(out),
                               json.dumps(extra), str(at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sorted(o.split()[0] for o, _ in outputs) == ["NOTHING", "PUBLISHED"], outputs
    assert existing_versions(out) == [1] and published_version(out) == 1


def test_publishing_the_same_inputs_again_publishes_nothing_unless_forced(sample, tmp_path, caplog):
    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import (
        existing_versions,
        publication_metadata,
        publish,
        published_tables_from_manifest,
    )

    out = tmp_path / "published"
    tables = published_tables_from_manifest(dbt_project().manifest_path)
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    first = publish(sample.warehouse_path, out, tables, extra)
    with caplog.at_level("INFO", logger="cyberclaims.publication.publish"):
        second = publish(sample.warehouse_path, out, tables, extra)
    assert first.published and not second.published and second.version == 1
    assert "nothing new to publish" in caplog.text
    assert existing_versions(out) == [1]
    forced = publish(sample.warehouse_path, out, tables, extra, force=True)
    assert forced.published and forced.version == 2 and existing_versions(out) == [1, 2]
    assert Path(out / ".publish.lock").exists()
