"""Taxonomy code lists, read from the dbt seeds (the single source of reference data)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"

# Code column of each taxonomy seed.
CODE_COLUMN = {
    "tax_sector": "sector_code",
    "tax_product_type": "product_type",
    "tax_coverage_section": "coverage_section",
    "tax_incident_type": "incident_type",
    "tax_attack_vector": "attack_vector",
    "tax_data_type": "data_type",
    "tax_claim_status": "status",
    "tax_region": "province_code",
    "tax_currency": "currency",
}


def read_seed(name: str, seeds_dir: Path = SEEDS_DIR) -> list[dict[str, str]]:
    with open(seeds_dir / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Taxonomy:
    codes: dict[str, frozenset[str]]
    # (first division, last division) → sector, from GB/T 4754
    divisions: tuple[tuple[int, int, str], ...]

    def division_sector(self, division: int) -> str | None:
        for lo, hi, sector in self.divisions:
            if lo <= division <= hi:
                return sector
        return None

    def known_divisions(self) -> list[str]:
        return [f"{d:02d}" for lo, hi, _ in self.divisions for d in range(lo, hi + 1)]


@cache
def load_taxonomy(seeds_dir: Path = SEEDS_DIR) -> Taxonomy:
    codes = {
        name: frozenset(row[column] for row in read_seed(name, seeds_dir))
        for name, column in CODE_COLUMN.items()
    }
    divisions = tuple(
        (int(r["division_from"]), int(r["division_to"]), r["sector_code"])
        for r in read_seed("tax_gbt4754_division", seeds_dir)
    )
    return Taxonomy(codes=codes, divisions=divisions)
