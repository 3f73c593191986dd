"""Idempotency, whole-file rejection, atomic loads, privacy and cross-insurer keys on the real warehouse."""

from __future__ import annotations

import re
import shutil

import polars as pl
import pytest

from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.pipeline import ingest_file, ingest_insurer
from cyberclaims.ingestion.pseudonymize import USCC_CHARSET
from tests.conftest import TEST_SECRET, ingestion_assets, materialize

_SET = re.escape(USCC_CHARSET)
# An 18-character token shaped like a unified social credit code (keys are 64-character hex tokens).
USCC_PATTERN = re.compile(f"(?<![0-9A-Za-z])[{_SET}]{{2}}[0-9]{{6}}[{_SET}]{{10}}(?![0-9A-Za-z])")


def text_columns(con) -> list[tuple[str, str, str]]:
    return con.execute("""
        SELECT table_schema, table_name, column_name FROM information_schema.columns
        WHERE data_type IN ('VARCHAR', 'VARCHAR[]', 'JSON')""").fetchall()


def test_no_unified_social_credit_code_anywhere_in_the_warehouse(sample):
    clear_ids = set(sample.truth("policy")["insured_id"]) | set(sample.truth("incident")["insured_id"])
    names = set(sample.truth("policy")["insured_name"].drop_nulls())
    with sample.con() as con:
        columns = text_columns(con)
        assert len(columns) > 20
        for schema, table, column in columns:
            values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {schema}."{table}"').fetchall()
            for (value,) in values:
                if value is None:
                    continue
                assert not USCC_PATTERN.search(value), f"{schema}.{table}.{column} holds a code: {value[:80]}"
                assert not any(i in value for i in clear_ids), f"{schema}.{table}.{column} holds an insured id"
                assert not any(n in value for n in names), f"{schema}.{table}.{column} holds an insured name"


def test_same_insured_at_two_insurers_gets_the_same_key(sample):
    policies = sample.truth("policy").filter(pl.col("defect").is_null())
    shared = (
        policies.group_by("insured_id").agg(pl.col("insurer_id").n_unique().alias("n"), pl.col("insurer_id").unique())
        .filter(pl.col("n") >= 2)
    )
    assert shared.height > 0, "the sample must contain insureds covered by two insurers"
    key = sample.pseudonymizer().key
    with sample.con() as con:
        for insured_id, _, insurers in shared.head(20).iter_rows():
            found = con.execute(
                "SELECT DISTINCT insurer_id FROM raw.policies WHERE insured_key = ?", [key(f"insured|{insured_id}")]
            ).fetchall()
            assert {r[0] for r in found} >= set(insurers)


def test_ingesting_again_changes_nothing(sample):
    with sample.con() as con:
        before = warehouse.table_counts(con)
    result = materialize(ingestion_assets(), sample.resources)
    assert result.success
    with sample.con() as con:
        after = warehouse.table_counts(con)
    assert after == before


def test_same_content_under_a_new_name_loads_once(tmp_path, sample):
    cfg = load_all_configs()["tianfu_digital"]
    landing = tmp_path / "landing"
    first = next(p for p in sorted((sample.landing / cfg.insurer_id).iterdir()) if p.name.startswith("tf_claim_"))
    (landing / cfg.insurer_id).mkdir(parents=True)
    shutil.copy(first, landing / cfg.insurer_id / first.name)
    shutil.copy(first, landing / cfg.insurer_id / ("tf_claim_" + "again.parquet"))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, sample.pseudonymizer())
    assert sorted(o.status for o in summary.outcomes) == ["already_loaded", "loaded"]
    rows = pl.read_parquet(first).height
    stored = con.execute(
        "SELECT (SELECT count(*) FROM raw.claim_valuations) + (SELECT count(*) FROM raw.quarantine)"
    ).fetchone()[0]
    assert stored == rows
    assert con.execute("SELECT count(*) FROM control.submissions").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM control.submission_files").fetchone()[0] == 2


def test_a_file_seen_unchanged_is_not_read_again_and_a_touched_one_is(tmp_path, sample, monkeypatch):
    import os

    from cyberclaims.ingestion import pipeline

    cfg = load_all_configs()["tianfu_digital"]
    landing = tmp_path / "landing"
    (landing / cfg.insurer_id).mkdir(parents=True)
    files = [p for p in sorted((sample.landing / cfg.insurer_id).iterdir()) if p.name.startswith("tf_claim_")][:3]
    for f in files:
        shutil.copy2(f, landing / cfg.insurer_id / f.name)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    assert [o.status for o in ingest_insurer(con, cfg, landing, sample.pseudonymizer()).outcomes] == ["loaded"] * 3

    hashed = []
    real_hash = pipeline.content_hash
    monkeypatch.setattr(pipeline, "content_hash", lambda path: hashed.append(path.name) or real_hash(path))
    again = ingest_insurer(con, cfg, landing, sample.pseudonymizer())
    assert [o.status for o in again.outcomes] == ["already_loaded"] * 3 and hashed == []

    # A new modification time (same content) is hashed again and recognised; a changed content loads.
    touched = landing / cfg.insurer_id / files[0].name
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 1_000_000_000))
    changed = landing / cfg.insurer_id / files[1].name
    frame = pl.read_parquet(changed)
    frame.head(frame.height - 1).write_parquet(changed)
    third = ingest_insurer(con, cfg, landing, sample.pseudonymizer())
    assert [o.status for o in third.outcomes] == ["already_loaded", "loaded", "already_loaded"]
    assert hashed == [files[0].name, files[1].name]
    assert con.execute("SELECT count(*) FROM control.submissions").fetchone()[0] == 4


@pytest.mark.parametrize(
    "insurer, name, payload, error",
    [
        ("changjiang_ins", "CJ_CLAIM_209901.csv", "赔案号,评估日期\nA,20240101\n".encode(), "not valid gbk"),
        ("tianfu_digital", "tf_claim_209901.parquet", b"PAR1 this is not parquet", "not a readable Parquet"),
        ("huanan_general", "huanan_209901.xlsx", b"PK\x03\x04 broken zip", "not a readable Excel"),
        ("pearl_river_hk", "prh_claims_209901.jsonl", b'{"claim_id": "X", "status": "Open"}\n{"claim_id": ', "truncated"),
        ("pearl_river_hk", "prh_claims_209902.jsonl", b'{"claim_id": "X"\n', "malformed JSON"),
        ("dongfang_pc", "claims_209901.csv", b"ClaimNo,IncidentNo\nC1,I1\n", "expected column(s) missing"),
        ("dongfang_pc", "policies.xml", b"<policies/>", "unknown layout"),
    ],
)
def test_unreadable_files_are_rejected_whole_and_the_rest_still_loads(tmp_path, sample, insurer, name, payload, error):
    cfg = load_all_configs()[insurer]
    landing = tmp_path / "landing"
    folder = landing / insurer
    folder.mkdir(parents=True)
    good = sorted(p for p in (sample.landing / insurer).iterdir() if cfg.record_types_for_file(p.name))[:2]
    for p in good:
        shutil.copy(p, folder / p.name)
    (folder / name).write_bytes(payload)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, sample.pseudonymizer())
    by_file = {o.source_file: o for o in summary.outcomes}
    bad = by_file[f"{insurer}/{name}"]
    assert bad.status == "rejected" and error in bad.error, bad.error
    assert all(by_file[f"{insurer}/{p.name}"].status == "loaded" for p in good)
    status, err = con.execute("SELECT status, error FROM control.submissions WHERE source_file = ?", [f"{insurer}/{name}"]).fetchone()
    assert status == "rejected" and error in err
    assert con.execute("SELECT count(*) FROM raw.quarantine WHERE source_file = ?", [f"{insurer}/{name}"]).fetchone()[0] == 0


def latest_workbook_in_fresh_landing(sample, tmp_path):
    """Excel carries all three record types in one file: the case where partial loads would show."""
    cfg = load_all_configs()["huanan_general"]
    workbook = sorted((sample.landing / cfg.insurer_id).glob("huanan_*.xlsx"))[-1]
    landing = tmp_path / "landing"
    (landing / cfg.insurer_id).mkdir(parents=True)
    target = landing / cfg.insurer_id / workbook.name
    shutil.copy(workbook, target)
    return cfg, landing, target


def test_a_failure_mid_submission_leaves_no_partial_rows(tmp_path, sample, monkeypatch):
    """Excel carries three record types; fail after the first is inserted: nothing of the file remains."""
    cfg, landing, target = latest_workbook_in_fresh_landing(sample, tmp_path)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    real_register = con.register
    calls = {"n": 0}

    class Boom(RuntimeError):
        pass

    class FailingConnection:
        def __getattr__(self, name):
            return getattr(con, name)

        def register(self, *args):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Boom("disk full")
            return real_register(*args)

    with pytest.raises(Boom):
        ingest_file(FailingConnection(), target, landing, cfg, sample.pseudonymizer())
    counts = warehouse.table_counts(con)
    assert counts["raw.policies"] == counts["raw.incidents"] == counts["raw.claim_valuations"] == counts["raw.quarantine"] == 0
    assert counts["control.submissions"] == 0
    # The next run loads the file whole.
    outcome = ingest_file(con, target, landing, cfg, sample.pseudonymizer())
    assert outcome.status == "loaded" and outcome.rows_loaded > 0


def test_secret_is_not_stored(sample):
    with sample.con() as con:
        for schema, table, column in text_columns(con):
            hits = con.execute(
                f'SELECT count(*) FROM {schema}."{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{TEST_SECRET}%"]
            ).fetchone()[0]
            assert hits == 0



KILL_CHILD = """
import sys, time
from pathlib import Path
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.pipeline import ingest_file
from cyberclaims.ingestion.pseudonymize import Pseudonymizer

landing, target, db, secret = map(Path, sys.argv[1:5])
cfg = load_all_configs()["huanan_general"]
con = warehouse.connect(db)

class StallAfterFirstInsert:
    def __getattr__(self, name):
        return getattr(con, name)

    def execute(self, sql, *args):
        result = con.execute(sql, *args)
        if sql.startswith("INSERT INTO raw."):
            print("INSERTED", flush=True)
            time.sleep(120)
        return result

ingest_file(StallAfterFirstInsert(), target, landing, cfg, Pseudonymizer(str(secret).encode()))
"""


def test_a_killed_process_mid_submission_leaves_no_partial_rows(tmp_path, sample):
    """SIGKILL the ingesting process after its first insert: reopening the file shows nothing of it."""
    import signal
    import subprocess
    import sys

    cfg, landing, target = latest_workbook_in_fresh_landing(sample, tmp_path)
    db = tmp_path / "wh.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(landing), str(target), str(db), TEST_SECRET],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "INSERTED"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    con = warehouse.connect(db)
    counts = warehouse.table_counts(con)
    assert sum(counts.values()) == 0, counts
    outcome = ingest_file(con, target, landing, cfg, sample.pseudonymizer())
    assert outcome.status == "loaded" and outcome.rows_loaded > 0


def test_the_pipeline_caps_duckdb_memory_and_the_cap_is_configurable(tmp_path, monkeypatch):
    """DuckDB would take 80 % of the machine; the pipeline's connections are capped (2 GB by default,
    CYBERCLAIMS_DUCKDB_MEMORY_LIMIT to change it), and dbt's profile reads the same variable."""
    import duckdb

    from cyberclaims.settings import PROJECT_ROOT

    def limit_bytes(setting: str) -> int:
        with duckdb.connect() as con:
            con.execute(f"SET memory_limit = '{setting}'")
            return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    with duckdb.connect() as con:
        machine_default = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    monkeypatch.delenv("CYBERCLAIMS_DUCKDB_MEMORY_LIMIT", raising=False)
    with warehouse.connect(tmp_path / "a.duckdb") as con:
        capped = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert capped == limit_bytes("2GB") != machine_default
    monkeypatch.setenv("CYBERCLAIMS_DUCKDB_MEMORY_LIMIT", "1GB")
    with warehouse.connect(tmp_path / "b.duckdb") as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == limit_bytes("1GB")
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    assert "memory_limit: \"{{ env_var('CYBERCLAIMS_DUCKDB_MEMORY_LIMIT', '2GB') }}\"" in profile
