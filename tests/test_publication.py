"""Write–audit–publish with real processes and real files: kills, failed checks, concurrent readers."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cyberclaims.orchestration.defs.transformation.project import dbt_project
from cyberclaims.publication.publish import (
    PUBLISHED_NAME,
    PublicationCheckFailed,
    existing_versions,
    publication_metadata,
    publish,
    published_tables_from_manifest,
    published_version,
    rollback,
)
from tests.conftest import materialize, publication_assets, significant


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables():
    return published_tables_from_manifest(dbt_project().manifest_path)


@pytest.fixture
def published(sample, tmp_path) -> Path:
    """A published dir holding version 1 of the sample's marts."""
    out = tmp_path / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    publish(sample.warehouse_path, out, tables(), extra)
    return out


def test_version_holds_the_marts_without_internal_columns_and_with_a_manifest(sample, published):
    with duckdb.connect(str(published / PUBLISHED_NAME), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns").fetchall()}
        manifest = dict(con.execute("SELECT key, value FROM publication_manifest").fetchall())
        claims = con.execute("SELECT count(*), sum(incurred_cny) FROM fct_claims").fetchall()[0]
    with sample.con() as wh:
        incurred = [r[0] for r in wh.execute("SELECT incurred_cny FROM marts.fct_claims").fetchall()]
    # Every claim, each amount at three significant figures.
    expected = (len(incurred), sum(significant(x) for x in incurred))
    assert {"fct_claims", "fct_claim_valuations", "fct_policies", "fct_loss_events", "fct_systemic_events",
            "dim_sector", "dim_date", "publication_manifest"} <= names
    assert not {"insurer_id", "submission_id", "ingested_at", "loaded_by_invocation"} & columns
    assert claims == expected
    exported = duckdb.sql(
        f"SELECT count(*), sum(incurred_cny) FROM '{published / 'parquet' / 'fct_claims.parquet'}'"
    ).fetchall()[0]
    assert exported == expected
    assert (published / "parquet").resolve() == (published / "exports" / "v000001" / "parquet").resolve()
    assert manifest["version"] == "1"
    assert '"no_insurer_identity", "passed": true' in manifest["checks"]
    assert existing_versions(published) == [1]


def test_next_version_and_rollback_are_atomic_swaps(sample, published):
    v1 = digest(published / PUBLISHED_NAME)
    publish(sample.warehouse_path, published, tables(), {})
    assert published_version(published) == 2 and existing_versions(published) == [1, 2]
    rollback(published, 1)
    assert published_version(published) == 1 and digest(published / PUBLISHED_NAME) == v1
    assert (published / "parquet").resolve().parent.name == "v000001"
    with pytest.raises(FileNotFoundError, match="not kept"):
        rollback(published, 7)


@pytest.mark.parametrize("value, failure", [
    ("91350100M000100Y43", "no_clear_identifiers: fct_policies.pilot_code (1 rows)"),
    ("dongfang_pc", "no_insurer_identity: fct_policies.pilot_code (1 rows)"),
])
def test_a_failing_check_publishes_nothing(sample, published, tmp_path, value, failure):
    """A clear unified social credit code or an insurer's name in a mart: the audit fails, version 1
    stays byte-identical."""
    broken = tmp_path / "broken.duckdb"
    sample.scratch_copy(broken)
    with duckdb.connect(str(broken)) as con:
        # The mart the published fct_policies is copied from (its generalised form).
        source = next(t.source for t in tables() if t.name == "fct_policies")
        con.execute(f'UPDATE marts."{source}" SET pilot_code = ? WHERE rowid = 0', [value])
    before = digest(published / PUBLISHED_NAME)
    with pytest.raises(PublicationCheckFailed, match=re.escape(failure)):
        publish(broken, published, tables(), {})
    assert digest(published / PUBLISHED_NAME) == before
    assert existing_versions(published) == [1]
    assert not (published / ".building").exists()


def test_a_mart_that_shrinks_too_much_is_not_published(sample, published, tmp_path):
    shrunk = tmp_path / "shrunk.duckdb"
    sample.scratch_copy(shrunk)
    with duckdb.connect(str(shrunk)) as con:
        # fct_claims is published from pub_fct_claims (meta publish_as).
        con.execute("DELETE FROM marts.pub_fct_claims WHERE rowid % 2 = 0")
    with pytest.raises(PublicationCheckFailed, match="row_counts_consistent: fct_claims"):
        publish(shrunk, published, tables(), {})
    assert published_version(published) == 1


KILL_AT = """
import sys, time
from pathlib import Path
import cyberclaims.publication.publish as p

point = sys.argv[3]

def stall(*args, **kwargs):
    print("AT", point, flush=True)
    time.sleep(120)

if point == "mid_build":
    p.run_checks = lambda *a, **k: stall()
elif point == "after_checkpoint":
    p._fsync = lambda *a, **k: stall()
elif point == "before_swap":
    p.os.replace = lambda src, dst, _real=p.os.replace: (stall() if str(dst).endswith("sector_claims.duckdb") else _real(src, dst))
from cyberclaims.orchestration.defs.transformation.project import dbt_project
p.publish(Path(sys.argv[1]), Path(sys.argv[2]), p.published_tables_from_manifest(dbt_project().manifest_path), {})
"""


@pytest.mark.parametrize("point", ["mid_build", "after_checkpoint", "before_swap"])
def test_killing_the_publisher_leaves_version_n_intact(sample, published, point):
    before = digest(published / PUBLISHED_NAME)
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_AT, str(sample.warehouse_path), str(published), point],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == f"AT {point}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert digest(published / PUBLISHED_NAME) == before
    assert published_version(published) == 1
    # The next run cleans up what the killed one left and publishes.
    result = publish(sample.warehouse_path, published, tables(), {})
    assert result.version >= 2 and published_version(published) == result.version
    assert not (published / ".building").exists()
    assert not list(published.glob(".*incoming"))


READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
version = con.execute("SELECT value FROM publication_manifest WHERE key = 'version'").fetchall()[0][0]
print("OPEN", version, flush=True)
time.sleep(float(sys.argv[2]))
# A query long enough to span the swap, still answered from the version opened.
n = con.execute("SELECT count(*) FROM fct_claim_valuations a, fct_claim_valuations b WHERE a.claim_key = b.claim_key").fetchall()[0][0]
again = con.execute("SELECT value FROM publication_manifest WHERE key = 'version'").fetchall()[0][0]
print("DONE", version, again, n, flush=True)
"""


def test_a_reader_keeps_version_n_while_n_plus_1_is_published(sample, published):
    path = published / PUBLISHED_NAME
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), "3"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().split() == ["OPEN", "1"]
    started = time.monotonic()
    result = publish(sample.warehouse_path, published, tables(), {})
    assert result.version == 2 and time.monotonic() - started < 30
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0, out
    _, opened, still, n = out.split()
    assert (opened, still) == ("1", "1") and int(n) > 0
    fresh = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect('{path}', read_only=True).execute("
         "\"SELECT value FROM publication_manifest WHERE key='version'\").fetchall()[0][0])"],
        capture_output=True, text=True, check=True,
    )
    assert fresh.stdout.strip() == "2"


def test_a_failing_dbt_test_stops_publication_in_dagster(sample, published, tmp_path):
    """A claim valued before it was reported breaks a blocking dbt test on rows of a published submission
    (no new submission can be held for it, see tests/test_sector_isolation.py): the run fails, nothing is
    published."""
    import dagster as dg

    sector_claims_db, _ = publication_assets()
    from cyberclaims.orchestration.defs.transformation import build_dbt_assets
    from tests.conftest import make_resources

    data_dir = tmp_path / "data"
    db = data_dir / "warehouse" / "wh.duckdb"
    db.parent.mkdir(parents=True)
    sample.scratch_copy(db)
    shutil.copytree(published, data_dir / "published")
    with duckdb.connect(str(db)) as con:
        # A row of a published submission changed in place; the full rebuild after a project change reads it.
        con.execute("""
            UPDATE raw.claim_valuations SET report_date = valuation_date + INTERVAL 1 DAY
            WHERE (submission_id, claim_key, valuation_date) = (
                SELECT (submission_id, claim_key, valuation_date) FROM marts.fct_claim_valuations LIMIT 1)""")
        con.execute("UPDATE control.mart_builds SET dbt_project_fingerprint = 'an older project'")
    before = digest(data_dir / "published" / PUBLISHED_NAME)
    result = materialize([build_dbt_assets(), sector_claims_db], make_resources(data_dir, db), raise_on_error=False)
    assert not result.success
    failed_checks = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "assert_claim_valuation_dates_in_order" in failed_checks, failed_checks
    assert dg.AssetKey(["published", "sector_claims"]) not in {
        e.asset_key for e in result.get_asset_materialization_events()
    }
    assert digest(data_dir / "published" / PUBLISHED_NAME) == before


def test_feedback_per_submission_holds_only_the_insurers_own_data(sample, published, tmp_path):
    import json

    from cyberclaims.publication.feedback import submission_reports, write_feedback
    from cyberclaims.publication.publish import published_submissions

    with sample.con() as con:
        reports = submission_reports(con, published_submissions(published))
        n_submissions = con.execute("SELECT count(*) FROM control.submissions").fetchall()[0][0]
        quarantined = dict(con.execute("SELECT submission_id, count(*) FROM raw.quarantine GROUP BY ALL").fetchall())
    out = tmp_path / "feedback"
    assert write_feedback(reports, out) == n_submissions
    files = sample.truth("files")
    held = sample.expected_held_files()
    for insurer_dir in out.iterdir():
        own = [json.loads(p.read_text(encoding="utf-8")) for p in insurer_dir.glob("*.json")]
        assert own and all(r["insurer_id"] == insurer_dir.name for r in own)
        for p in insurer_dir.iterdir():
            text = p.read_text(encoding="utf-8")
            others = {i for i in files["insurer_id"] if i != insurer_dir.name}
            assert not any(f"{o}/" in text for o in others), f"{p} mentions another insurer"
        for r in own:
            assert (insurer_dir / f"{r['submission_id']}.html").exists()
            if r["status"] == "loaded":
                assert r["rows"]["delivered"] == r["rows"]["accepted"] + r["rows"]["quarantined"]
                assert r["rows"]["quarantined"] == quarantined.get(r["submission_id"], 0)
                if r["source_file"] in held:
                    assert r["gate"]["status"] == "held" and r["gate"]["reasons"]
                    assert r["publication"] == {"status": "held", "version": None}
                else:
                    assert r["gate"]["status"] == "passed"
                    assert r["publication"] == {"status": "published", "version": 1}
            else:
                assert r["error"] and r["publication"]["status"] == "rejected"
    by_file = {r["source_file"]: r for r in reports}
    for source_file, kind in files.select("source_file", "kind").iter_rows():
        if kind == "resubmission":
            assert any(source_file in r["also_delivered_as"] for r in reports)
        elif kind == "truncated":
            assert "truncated" in by_file[source_file]["error"]
    with_samples = [r for r in reports if r["quarantine_samples"]]
    assert with_samples and all(
        sum(len(v) for v in r["quarantine_samples"].values()) >= 1 for r in with_samples
    )


def test_a_mart_is_published_under_its_publish_as_name_and_an_excluded_mart_not_at_all(tmp_path):
    def model(name: str, meta: dict, columns: dict) -> dict:
        return {"resource_type": "model", "name": name, "config": {"schema": "marts", "meta": meta},
                "columns": {c: {"meta": m} for c, m in columns.items()}}

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {
        "model.x.fct_policies": model("fct_policies", {"publication": "exclude"}, {"policy_key": {}}),
        "model.x.pub_fct_policies": model("pub_fct_policies", {"publish_as": "fct_policies"},
                                          {"policy_key": {}, "insurer_id": {"publication": "exclude"}}),
        "model.x.fct_claims": model("fct_claims", {}, {"claim_key": {}}),
    }}), encoding="utf-8")
    published = {t.name: (t.source, t.columns, t.excluded) for t in published_tables_from_manifest(manifest)}
    assert published == {"fct_policies": ("pub_fct_policies", ["policy_key"], ["insurer_id"]),
                         "fct_claims": ("fct_claims", ["claim_key"], [])}
