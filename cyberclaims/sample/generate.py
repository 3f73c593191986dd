"""Write a complete sample landing zone and its truth: `cyberclaims generate`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.sample.market import MarketParams, simulate_market
from cyberclaims.sample.profiles import SampleProfile, sample_market
from cyberclaims.sample.render import EXPECTED_REASON, DefectRates, file_truth_frame, render_insurer


def generate_sample(
    data_dir: Path,
    params: MarketParams,
    rates: DefectRates,
    configs: dict[str, InsurerConfig] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    profiles: dict[str, SampleProfile] | None = None,
) -> dict:
    """Simulate the market, write every insurer's files under data_dir/landing, truth under data_dir/truth.

    The market's insurers are those with both a valid config (default: the config folder's) and a sample
    profile (default: cyberclaims/sample/profiles.yaml). Returns a summary (the insurers, those left out
    and why, row counts delivered per insurer and record type, expected quarantine reasons, file-level
    defects). Existing landing and truth folders are replaced.
    """
    market_insurers = sample_market(configs, profiles)
    landing, truth_dir = data_dir / "landing", data_dir / "truth"
    for folder in (landing, truth_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    for insurer_id, why in market_insurers.left_out.items():
        progress(f"not in the sample market: {insurer_id} ({why})")
    progress(f"simulating the market of {len(market_insurers.profiles)} insurers")
    market = simulate_market(params, market_insurers.profiles)
    rng = np.random.Generator(np.random.PCG64(params.seed + 1))
    delivered: dict[str, list[pl.DataFrame]] = {}
    files = []
    profile_of = {p.insurer_id: p for p in market_insurers.profiles}
    for insurer_id, cfg in sorted(market_insurers.configs.items()):
        layouts = ", ".join(sorted({cfg.read_spec(rt).format for rt in cfg.record_types}))
        progress(f"writing {insurer_id} ({layouts})")
        rows, insurer_files = render_insurer(market, cfg, profile_of[insurer_id], landing, rates, rng)
        files += insurer_files
        for rt, frame in rows.items():
            delivered.setdefault(rt, []).append(frame)

    progress("writing truth")
    summary: dict = {"params": asdict(params), "defect_rates": asdict(rates), "insurers": sorted(profile_of),
                     "left_out": market_insurers.left_out, "record_types": {}}
    for rt, frames in delivered.items():
        frame = pl.concat(frames, how="diagonal_relaxed")
        frame.write_parquet(truth_dir / f"{rt}.parquet")
        summary["record_types"][rt] = {
            "delivered": frame.height,
            "by_insurer": dict(frame.group_by("insurer_id").len().sort("insurer_id").iter_rows()),
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
