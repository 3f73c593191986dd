"""regulator/pack.yaml is read through one validating model: a bad file is refused with the field named.
The claim size bands are reference data of the warehouse (seed tax_claim_size_band), checked by dbt."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import pytest
import yaml

from cyberclaims.orchestration.defs.transformation.project import dbt_project
from cyberclaims.regulator.model import TABLE_SPECS
from cyberclaims.regulator.pack import DEFAULT_CONFIG, build_pack, load_config
from cyberclaims.regulator.statistics import PackError, cut_id


def _variant(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_file_reads_as_written():
    doc = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config = load_config()
    assert config.rules.min_insurers == doc["disclosure"]["min_insurers"]
    assert config.rules.min_insureds == doc["disclosure"]["min_insureds"]
    assert config.rules.dominance_share == doc["disclosure"]["dominance_share"]


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d["disclosure"].update(min_insurers=0), "disclosure.min_insurers"),
    (lambda d: d["disclosure"].update(dominance_share=1.5), "disclosure.dominance_share"),
    (lambda d: d["disclosure"].update(min_insureds="five"), "disclosure.min_insureds"),
    (lambda d: d["disclosure"].pop("min_insureds"), "disclosure.min_insureds"),
    (lambda d: d["disclosure"].update(min_insurer=3), "disclosure.min_insurer"),  # a misspelt key
    (lambda d: d.pop("disclosure"), "disclosure"),
    # An older rules file with its own bands: refused, pointing at where the bands live now.
    (lambda d: d.update(severity_bands=[{"code": "all", "zh": "全部", "en": "All", "upper": None}]),
     "dbt seed tax_claim_size_band"),
])
def test_a_bad_file_names_the_field(tmp_path, change, named):
    path = _variant(tmp_path, change)
    with pytest.raises(PackError) as refused:
        load_config(path)
    assert named in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text("disclosure: [unclosed", encoding="utf-8")
    with pytest.raises(PackError, match="not a valid regulator pack configuration"):
        load_config(path)


# --- the claim size bands: dbt's singular test over the seed ----------------------------------------

SEED = dbt_project().project_dir / "seeds" / "tax_claim_size_band.csv"
PARTITION_TEST = dbt_project().project_dir / "tests" / "assert_claim_size_bands_partition.sql"


def _shipped_bands() -> list[dict]:
    with SEED.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _partition_failures(bands: list[dict]) -> int:
    """Rows dbt's test assert_claim_size_bands_partition returns over these bands (its SQL as
    written, over a table of the bands instead of the seed)."""
    con = duckdb.connect()
    con.execute("create table bands (claim_size_band varchar, sort_order integer, upper_bound decimal(22, 2))")
    con.executemany("insert into bands values (?, ?, ?)",
                    [(b["claim_size_band"], int(b["sort_order"]), b["upper_bound"] or None) for b in bands])
    sql = re.sub(r"\{\{\s*ref\('tax_claim_size_band'\)\s*\}\}", "bands", PARTITION_TEST.read_text(encoding="utf-8"))
    assert "{{" not in sql
    return len(con.execute(sql).fetchall())


def _changed(change) -> list[dict]:
    bands = [dict(b) for b in _shipped_bands()]
    change(bands)
    return bands


def test_the_shipped_bands_partition_the_amounts():
    bands = _shipped_bands()
    assert [b["upper_bound"] for b in bands].count("") == 1
    assert _partition_failures(bands) == 0


@pytest.mark.parametrize("change", [
    lambda b: b[-1].update(upper_bound="99999999"),  # no open band
    lambda b: b[2].update(upper_bound=""),  # an open band before bounded ones
    lambda b: b[3].update(upper_bound=b[2]["upper_bound"]),  # two bands with one bound
    lambda b: b[1].update(upper_bound="1000000000"),  # bounds out of order
], ids=["no-open-band", "open-band-first", "repeated-bound", "out-of-order"])
def test_bands_that_do_not_partition_the_amounts_fail_the_dbt_test(change):
    assert _partition_failures(_changed(change)) > 0


# --- the cuts: dbt builds every cut the pack's tables need ------------------------------------------

def test_every_table_of_the_pack_is_a_cut_dbt_builds():
    project = yaml.safe_load((dbt_project().project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    built = {"__".join(cut) for cut in project["vars"]["regulator_pack_cuts"]}
    needed = {cut_id(spec.row_dim.code, spec.column_dim.code if spec.column_dim else None)
              for spec in TABLE_SPECS if spec.name != "sector_quarter"} | {"sector"}
    assert needed <= built


def test_a_cut_missing_from_the_marts_is_refused_with_the_var_to_set(sample, tmp_path):
    warehouse = sample.scratch_copy(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        removed = con.execute("delete from marts.reg_cells where cut_id = 'province'").fetchall()[0][0]
    assert removed > 0
    with pytest.raises(PackError, match="regulator_pack_cuts"):
        build_pack(warehouse, tmp_path / "unpublished")
