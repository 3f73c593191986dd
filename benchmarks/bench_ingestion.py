"""Ingestion throughput per insurer layout and peak memory.

    .venv/bin/python benchmarks/bench_ingestion.py --target-rows 1000000

Generates a sample of about TARGET claim-valuation rows across the layouts of the sample market
(every insurer with a config and a sample profile; into benchmarks/output/ by default), then
ingests each insurer in its own process, so each layout's peak RSS is its own, and prints rows/s
and peak memory per layout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(insurer_id: str, data_dir: Path) -> None:
    from cyberclaims.ingestion import warehouse
    from cyberclaims.ingestion.config import load_all_configs
    from cyberclaims.ingestion.pipeline import ingest_insurer
    from cyberclaims.ingestion.pseudonymize import Pseudonymizer, load_secret

    cfg = load_all_configs()[insurer_id]
    con = warehouse.connect(data_dir / "warehouse" / "bench.duckdb")
    pseudonymizer = Pseudonymizer(load_secret(data_dir / "secrets" / "hmac.key"))
    started = time.perf_counter()
    summary = ingest_insurer(con, cfg, data_dir / "landing", pseudonymizer)
    seconds = time.perf_counter() - started
    con.close()
    landing_bytes = sum(p.stat().st_size for p in (data_dir / "landing" / insurer_id).rglob("*") if p.is_file())
    layouts = []
    for rt in cfg.record_types:
        spec = cfg.read_spec(rt)
        layout = spec.format + (f" ({spec.encoding})" if spec.format == "csv" else "")
        if layout not in layouts:
            layouts.append(layout)
    print(json.dumps({
        "insurer_id": insurer_id,
        "format": ", ".join(layouts),
        "files": len(summary.outcomes),
        "rows": summary.rows_loaded + summary.rows_quarantined,
        "seconds": seconds,
        "landing_mb": landing_bytes / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }))


def peak_rss_mb() -> float:
    """This process's own high-water mark (ru_maxrss would include the parent's image from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "output" / "ingestion")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing sample in --data-dir")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data_dir)
        return

    from cyberclaims.sample.generate import generate_sample
    from cyberclaims.sample.market import params_for_target_rows
    from cyberclaims.sample.profiles import sample_insurers
    from cyberclaims.sample.render import DefectRates

    data_dir: Path = args.data_dir
    if not (args.reuse and (data_dir / "landing").exists()):
        params = params_for_target_rows(args.target_rows)
        started = time.perf_counter()
        summary = generate_sample(data_dir, params, DefectRates(), progress=lambda m: print(f"  … {m}", flush=True))
        gen_seconds = time.perf_counter() - started
        print(f"generated {summary['record_types']['claim_valuation']['delivered']:,} claim-valuation rows "
              f"({params.n_insureds:,} insureds) in {gen_seconds:.1f}s, peak RSS "
              f"{peak_rss_mb():.0f} MB")
    db = data_dir / "warehouse" / "bench.duckdb"
    if db.exists():
        db.unlink()
    env = dict(os.environ)
    results = []
    for insurer_id in sample_insurers():
        out = subprocess.run(
            [sys.executable, __file__, "--child", insurer_id, "--data-dir", str(data_dir)],
            env=env, capture_output=True, text=True, check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print()
    print(f"{'insurer':16s} {'layout':30s} {'files':>5s} {'rows':>10s} {'MB in':>7s} {'seconds':>8s} {'rows/s':>9s} {'peak RSS MB':>11s}")
    for r in results:
        print(f"{r['insurer_id']:16s} {r['format']:30s} {r['files']:>5d} {r['rows']:>10,} {r['landing_mb']:>7.1f} "
              f"{r['seconds']:>8.1f} {r['rows'] / r['seconds']:>9,.0f} {r['peak_rss_mb']:>11.0f}")
    rows = sum(r["rows"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    print(f"{'all':16s} {'':30s} {sum(r['files'] for r in results):>5d} {rows:>10,} "
          f"{sum(r['landing_mb'] for r in results):>7.1f} {seconds:>8.1f} {rows / seconds:>9,.0f} "
          f"{max(r['peak_rss_mb'] for r in results):>11.0f}")
    (data_dir / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
