"""The whole monthly cycle at scale: wall time and peak memory per stage, incremental month, empty
month, and the actuaries' queries on the published database.

    .venv/bin/python benchmarks/bench_cycle.py --target-rows 1000000

1. Generates (or with --reuse, reuses) a sample of about TARGET claim-valuation rows, with
   policies and incidents in proportion, across the sample insurer layouts.
2. **Full build**: every month but the last, through `cyberclaims run` in its own process (ingest,
   submission gate, dbt build with tests, publication, feedback, regulator pack). Wall time per
   stage comes from the Dagster event log of the run; peak memory is the resident set of the
   whole process tree (the CLI and everything it starts, dbt included), sampled every 0.5 s.
   Then the **floor** (benchmarks/floor.py): the same fct_claim_valuations from the same landing
   files by one hand-written DuckDB script, checked equal to the pipeline's table; the full build
   is reported as a multiple of it.
3. **Incremental**: the last month's files of every insurer arrive; the cycle runs again.
4. **Empty month**: nothing new arrives; the cycle runs again (the fixed cost of the machinery).
5. **Reader latency**: the ten queries of docs/actuaries.md on the published database, median of
   five runs each.

Figures go to <data-dir>/results.json and, with --record, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECRET = "benchmark-secret-0123456789abcdef0123456789"
GUIDE = ROOT / "docs" / "actuaries.md"


class TreeMemory:
    """Peak and timeline of the resident memory of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = 0
            for p in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            self.samples.append((time.time(), rss))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float | None = None, end: float | None = None) -> float:
        window = [rss for t, rss in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return max(window, default=0) / 2**20


def stage_of(step_key: str) -> str:
    if step_key.startswith("published__"):
        return "publish"
    if step_key.startswith("feedback__"):
        return "feedback"
    if step_key.startswith("regulator__"):
        return "regulator pack"
    if step_key.startswith(("ingestion__", "raw__")) or "gate" in step_key:
        return "ingest + gate"
    return "dbt build + tests"


def step_windows(dagster_home: Path, run_id: str) -> list[tuple[str, float, float]]:
    """(step key, start, end) of every step of the run, from the instance's event log."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    starts: dict[str, float] = {}
    windows = []
    with dg.DagsterInstance.get() as instance:
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or not record.step_key:
                continue
            if event.event_type_value == "STEP_START":
                starts[record.step_key] = record.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and record.step_key in starts:
                windows.append((record.step_key, starts[record.step_key], record.timestamp))
    return windows


def run_cycle(data_dir: Path, label: str, *cli_args: str) -> dict:
    """One `cyberclaims run` (with `cli_args`, e.g. --rebuild) in its own process, timed per stage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    env.update(CYBERCLAIMS_DATA_DIR=str(data_dir), CYBERCLAIMS_HMAC_KEY=SECRET)
    started = time.time()
    process = subprocess.Popen([sys.executable, "-m", "cyberclaims.cli", "run", "--log-level", "WARNING", *cli_args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    stdout, stderr = process.communicate()
    memory.stop()
    wall = time.time() - started
    if process.returncode != 0:
        raise SystemExit(f"{label}: the cycle failed\n{stdout}\n{stderr[-4000:]}")
    run_id = re.search(r"Run (\S+) of job", stdout).group(1)
    stages: dict[str, dict] = {}
    for step, start, end in step_windows(data_dir / "dagster_home", run_id):
        stage = stages.setdefault(stage_of(step), {"seconds": 0.0, "peak_rss_mb": 0.0, "steps": 0})
        stage["seconds"] += end - start
        stage["steps"] += 1
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], memory.peak_mb(start, end))
    in_steps = sum(s["seconds"] for s in stages.values())
    stages["start-up and orchestration"] = {"seconds": wall - in_steps, "peak_rss_mb": memory.peak_mb(), "steps": 0}
    print(f"  {label}: {wall:.1f}s, peak RSS of the process tree {memory.peak_mb():.0f} MB", flush=True)
    return {"seconds": wall, "peak_rss_mb": memory.peak_mb(), "stages": stages, "run_id": run_id}


def reader_latency(published: Path, repeats: int = 5) -> list[dict]:
    from cyberclaims.sql import open_published

    queries = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    results = []
    with open_published(published) as con:
        for i, query in enumerate(queries, 1):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                rows = con.execute(query).fetchall()
                times.append(time.perf_counter() - started)
            results.append({"query": i, "median_seconds": statistics.median(times), "rows": len(rows)})
    return results


def gate_statuses(warehouse: Path) -> dict[str, int]:
    """Submissions by gate status: held ones are not in the marts, so they shape every later figure."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute("SELECT status, count(*) FROM control.submission_gate GROUP BY ALL ORDER BY ALL").fetchall())


def delivered_rows(truth: Path) -> dict[str, int]:
    import polars as pl

    return {rt: pl.scan_parquet(truth / f"{rt}.parquet").select(pl.len()).collect().item()
            for rt in ("policy", "incident", "claim_valuation")}


def prepare_sample(sample_dir: Path, target_rows: int, reuse: bool) -> None:
    if reuse and (sample_dir / "landing").exists():
        return
    from cyberclaims.sample.generate import generate_sample
    from cyberclaims.sample.market import params_for_target_rows
    from cyberclaims.sample.render import DefectRates

    if sample_dir.exists():
        shutil.rmtree(sample_dir)
    started = time.perf_counter()
    summary = generate_sample(sample_dir, params_for_target_rows(target_rows), DefectRates(),
                              progress=lambda m: print(f"  … {m}", flush=True))
    print(f"generated {summary['record_types']['claim_valuation']['delivered']:,} claim-valuation rows in "
          f"{time.perf_counter() - started:.0f}s", flush=True)


def machine() -> dict:
    return {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def markdown(results: dict) -> str:
    m = results["machine"]
    full, inc, empty = results["full_build"], results["incremental_month"], results["empty_month"]
    rows = sum(results["delivered_rows"].values())
    lines = [
        f"# Benchmark results — {results['target_rows']:,} claim-valuation rows",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}. Run {results['date']} with "
        f"`.venv/bin/python benchmarks/bench_cycle.py --target-rows {results['target_rows']}`.",
        "",
        f"Delivered rows (all months): {rows:,} "
        f"({', '.join(f'{k} {v:,}' for k, v in results['delivered_rows'].items())}).",
        "",
        "| run | wall time (s) | peak RSS, process tree (MB) |",
        "|---|---:|---:|",
        f"| full build (all months but the last) | {full['seconds']:.1f} | {full['peak_rss_mb']:.0f} |",
        f"| floor: the same fct_claim_valuations by one DuckDB script | {results['floor']['seconds']:.1f} "
        f"(pipeline = {results['pipeline_over_floor']:.1f}× floor) | {results['floor']['peak_rss_mb']:.0f} |",
        f"| incremental month | {inc['seconds']:.1f} ({inc['seconds'] / full['seconds']:.1%} of the full build) "
        f"| {inc['peak_rss_mb']:.0f} |",
        f"| empty month (nothing new) | {empty['seconds']:.1f} | {empty['peak_rss_mb']:.0f} |",
        "",
        f"End to end: {results['rows_per_second']:,.0f} delivered rows per second.",
        "",
        "| stage (full build) | seconds | peak RSS (MB) |",
        "|---|---:|---:|",
        *(f"| {name} | {s['seconds']:.1f} | {s['peak_rss_mb']:.0f} |" for name, s in full["stages"].items()),
        "",
        "| actuaries' query (docs/actuaries.md) | median of 5 (ms) | rows |",
        "|---|---:|---:|",
        *(f"| {q['query']} | {q['median_seconds'] * 1000:.1f} | {q['rows']:,} |" for q in results["reader_latency"]),
        "",
    ]
    return "\n".join(lines)


NOTES_MARK = "<!-- notes: kept by --record -->"


def record(table: str) -> None:
    """Write the table to benchmarks/RESULTS.md, keeping the hand-written notes below NOTES_MARK."""
    target = ROOT / "benchmarks" / "RESULTS.md"
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    notes = text[text.index(NOTES_MARK):] if NOTES_MARK in text else NOTES_MARK + "\n"
    target.write_text(table + "\n" + notes, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "output" / "cycle")
    parser.add_argument("--reuse", action="store_true", help="reuse the generated sample in --data-dir")
    parser.add_argument("--record", action="store_true", help="write the table to benchmarks/RESULTS.md")
    args = parser.parse_args()

    sample_dir, run_dir = args.data_dir / "sample", args.data_dir / "run"
    prepare_sample(sample_dir, args.target_rows, args.reuse)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    landing = sample_dir / "landing"
    last_month = max(p.stem[-6:] for p in landing.rglob("*") if p.is_file() and p.stem[-6:].isdigit())
    held_back = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        target = run_dir / "landing" / path.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        (held_back.append((path, target)) if last_month in path.name else shutil.copy(path, target))

    print(f"full build (every month before {last_month}) …", flush=True)
    full = run_cycle(run_dir, "full build")
    from benchmarks.floor import run_floor

    floor = run_floor(run_dir / "landing", run_dir / "warehouse" / "cyberclaims.duckdb", SECRET.encode("utf-8"))
    if not floor["equal"]:
        raise SystemExit(f"the floor's fct_claim_valuations differs from the pipeline's: {floor}")
    print(f"  floor: {floor['seconds']:.1f}s, peak RSS {floor['peak_rss_mb']:.0f} MB, {floor['rows']:,} rows equal "
          f"to the pipeline's; the full build takes {full['seconds'] / floor['seconds']:.1f}× the floor", flush=True)
    full["gate"] = gate_statuses(run_dir / "warehouse" / "cyberclaims.duckdb")
    print(f"  submissions by gate status after the full build: {full['gate']}", flush=True)
    latency_full = reader_latency(run_dir / "published" / "sector_claims.duckdb")
    progress = {"target_rows": args.target_rows, "full_build": full, "floor": floor,
                "reader_latency_after_full_build": latency_full}
    # Written now too: at 10M rows the full build alone takes most of an hour.
    (args.data_dir / "results.partial.json").write_text(json.dumps(progress, indent=1), encoding="utf-8")
    for name, stage in full["stages"].items():
        print(f"    {name:28s} {stage['seconds']:8.1f} s  {stage['peak_rss_mb']:8.0f} MB", flush=True)
    print("  slowest actuary query after the full build: "
          f"{max(q['median_seconds'] for q in latency_full) * 1000:.1f} ms", flush=True)
    for path, target in held_back:
        shutil.copy(path, target)
    print(f"incremental month ({len(held_back)} files of {last_month}) …", flush=True)
    incremental = run_cycle(run_dir, "incremental month")
    print("empty month …", flush=True)
    empty = run_cycle(run_dir, "empty month")
    latency = reader_latency(run_dir / "published" / "sector_claims.duckdb")

    rows = delivered_rows(sample_dir / "truth")
    results = {
        "target_rows": args.target_rows, "date": time.strftime("%Y-%m-%d"), "machine": machine(),
        "delivered_rows": rows, "rows_per_second": sum(rows.values()) / (full["seconds"] + incremental["seconds"]),
        "full_build": full, "floor": floor, "pipeline_over_floor": full["seconds"] / floor["seconds"],
        "incremental_month": incremental, "empty_month": empty, "reader_latency": latency,
    }
    (args.data_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = markdown(results)
    print()
    print(table)
    if args.record:
        record(table)


if __name__ == "__main__":
    main()
