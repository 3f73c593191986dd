"""Write a complete sample landing zone and its truth: `cyberclaims generate`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from cyberclaims.sample.market import MarketParams, simulate_market
from cyberclaims.sample.render import (
    EXPECTED_REASON,
    DefectRates,
    file_truth_frame,
    inject_file_defects,
    render_insurer,
)
from ingestion.config import InsurerConfig, load_all_configs


def generate_sample(
    data_dir: Path,
    params: MarketParams,
    rates: DefectRates,
    configs: dict[str, InsurerConfig] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict:
    """Simulate the market, write every insurer's files under data_dir/landing, truth under data_dir/truth.

    Returns a summary (row counts delivered per insurer and record type, expected quarantine
    reasons, file-level defects). Existing landing and truth folders are replaced.
    """
    configs = configs or load_all_configs()
    landing, truth_dir = data_dir / "landing", data_dir / "truth"
    for folder in (landing, truth_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    progress("simulating the market")
    market = simulate_market(params)
    rng = np.random.Generator(np.random.PCG64(params.seed + 1))
    delivered: dict[str, list[pl.DataFrame]] = {}
    files = []
    for index, (insurer_id, cfg) in enumerate(sorted(configs.items())):
        progress(f"writing {insurer_id} ({cfg.format})")
        rows, insurer_files = render_insurer(market, cfg, landing, rates, rng)
        if rates.file_defects:
            insurer_files += inject_file_defects(landing, cfg, insurer_files, index)
        files += insurer_files
        for rt, frame in rows.items():
            delivered.setdefault(rt, []).append(frame)

    progress("writing truth")
    summary: dict = {"params": asdict(params), "defect_rates": asdict(rates), "record_types": {}}
    for rt, frames in delivered.items():
        frame = pl.concat(frames, how="diagonal_relaxed")
        frame.write_parquet(truth_dir / f"{rt}.parquet")
        summary["record_types"][rt] = {
            "delivered": frame.height,
            "good": frame.filter(pl.col("defect").is_null()).height,
            "defects": dict(
                frame.filter(pl.col("defect").is_not_null()).group_by("defect").len().sort("defect").iter_rows()
            ),
        }
    expected: dict[str, int] = {}
    for info in summary["record_types"].values():
        for defect, n in info["defects"].items():
            expected[EXPECTED_REASON[defect]] = expected.get(EXPECTED_REASON[defect], 0) + n
    summary["expected_quarantine_reasons"] = dict(sorted(expected.items()))
    file_frame = file_truth_frame(files)
    file_frame.write_parquet(truth_dir / "files.parquet")
    summary["files"] = dict(file_frame.group_by("kind").len().sort("kind").iter_rows())
    for name in ("systemic_event", "insured"):
        if name in market:
            market[name].write_parquet(truth_dir / f"{name}.parquet")
    (truth_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return summary
