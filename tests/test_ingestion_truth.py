"""Every insurer layout, end to end: what the warehouse holds equals the generator's truth."""

from __future__ import annotations

import polars as pl
import pytest

from cyberclaims.sample.render import EXPECTED_REASON
from ingestion import contract as c
from ingestion.config import load_all_configs
from ingestion.pseudonymize import normalize_identifier

CONFIGS = load_all_configs()
INSURERS = sorted(CONFIGS)


def expected_frame(truth: pl.DataFrame, rt: str, pseudonymizer, delivered: frozenset[str]) -> pl.DataFrame:
    """The canonical rows the warehouse must hold for the truth's good rows: NULL where the insurer's
    config does not deliver the field."""
    good = truth.filter(pl.col("defect").is_null())
    exprs = [pl.col("insurer_id"), pl.col("source_file"), pl.col("source_row")]
    for f in c.stored_fields(rt):
        col = pl.col(f.name)
        if f.name not in delivered:
            exprs.append(pl.lit(None, dtype=truth.schema[f.name]).alias(c.key_column(f) if f.kind == "identifier" else f.name))
        elif f.kind == "identifier":
            if f.key_scope == "insured":
                key = pl.struct("insurer_id", f.name).map_elements(
                    lambda s, n=f.name: pseudonymizer.key(f"insured|{normalize_identifier(s[n])}"), return_dtype=pl.String
                )
            else:
                key = pl.struct("insurer_id", f.name).map_elements(
                    lambda s, n=f.name, scope=f.key_scope: pseudonymizer.key(f"{scope}|{s['insurer_id']}|{s[n]}"),
                    return_dtype=pl.String,
                )
            exprs.append(key.alias(c.key_column(f)))
        elif f.kind in ("code_list", "str_list"):
            # An empty list is delivered as an empty cell and stored as NULL.
            exprs.append(pl.when(col.list.len() > 0).then(col).alias(f.name))
        elif f.name == "industry_code":
            exprs.append(col.str.replace(r"^[A-Za-z]", "").alias(f.name))
        else:
            exprs.append(col)
    return good.select(exprs)


@pytest.mark.parametrize("rt", c.RECORD_TYPES)
@pytest.mark.parametrize("insurer", INSURERS)
def test_every_field_of_every_good_row_equals_truth(sample, insurer, rt):
    truth = sample.truth(rt).filter(pl.col("insurer_id") == insurer)
    expected = expected_frame(truth, rt, sample.pseudonymizer(), CONFIGS[insurer].delivered_fields(rt))
    assert expected.height > 0, "the sample must deliver rows of every record type for every insurer"
    with sample.con() as con:
        loaded = con.sql(
            f"SELECT * EXCLUDE (submission_id, ingested_at, mapping_version) FROM raw.{c.RAW_TABLE[rt]} "
            "WHERE insurer_id = ?", params=[insurer]
        ).pl()
    assert loaded.height == expected.height
    keys = ["insurer_id", "source_file", "source_row"]
    joined = expected.join(loaded, on=keys, how="left", suffix="__wh", validate="1:1")
    for column in expected.columns:
        if column in keys:
            continue
        mismatched = joined.filter(~pl.col(column).eq_missing(pl.col(f"{column}__wh").cast(expected.schema[column])))
        assert mismatched.is_empty(), (
            f"{insurer} {rt}.{column}: {mismatched.height} rows differ, e.g. "
            f"{mismatched.select(*keys, column, f'{column}__wh').head(3).to_dicts()}"
        )


@pytest.mark.parametrize("insurer", INSURERS)
def test_every_defect_is_quarantined_with_its_reason_and_no_good_row_is(sample, insurer):
    with sample.con() as con:
        quarantine = con.sql(
            "SELECT record_type, source_file, source_row, reason_codes FROM raw.quarantine WHERE insurer_id = ?",
            params=[insurer],
        ).pl()
    for rt in c.RECORD_TYPES:
        truth = sample.truth(rt).filter(pl.col("insurer_id") == insurer)
        defects = truth.filter(pl.col("defect").is_not_null()).select("source_file", "source_row", "defect")
        q = quarantine.filter(pl.col("record_type") == rt)
        assert set(defects.select("source_file", "source_row").iter_rows()) == set(
            q.select("source_file", "source_row").iter_rows()
        ), f"{insurer} {rt}: quarantined rows differ from the injected defects"
        joined = defects.join(q, on=["source_file", "source_row"])
        for defect, reasons in joined.select("defect", "reason_codes").iter_rows():
            assert EXPECTED_REASON[defect] in reasons, f"{insurer} {rt}: {defect} quarantined as {reasons}"
        assert defects["defect"].n_unique() >= (4 if rt == "incident" else 5), (
            f"{insurer} {rt}: the sample should exercise the defect kinds ({defects['defect'].unique().to_list()})"
        )


def test_quarantine_reason_counts_equal_injected_defects(sample):
    with sample.con() as con:
        per_reason = dict(con.sql(
            "SELECT reason_codes[1], count(*) FROM raw.quarantine GROUP BY ALL"
        ).fetchall())
        multi = con.execute("SELECT count(*) FROM raw.quarantine WHERE len(reason_codes) <> 1").fetchone()[0]
    # Each injected defect breaks exactly one rule, so each quarantined row carries one reason code.
    assert multi == 0
    assert per_reason == sample.summary["expected_quarantine_reasons"]
    assert set(per_reason) == set(EXPECTED_REASON.values())


def test_counts_reconcile_per_submission(sample):
    """delivered = loaded + quarantined for every submission and record type, and equals the file's truth."""
    files = sample.truth("files").filter(pl.col("kind").is_in(["regular", "extra_column"]))
    with sample.con() as con:
        counts = con.sql("""
            SELECT s.source_file, sum(k.rows_delivered) AS delivered, sum(k.rows_loaded) AS loaded,
                   sum(k.rows_quarantined) AS quarantined
            FROM raw.submissions s JOIN raw.submission_counts k USING (submission_id)
            WHERE s.status = 'loaded' GROUP BY ALL""").pl()
        stored = con.sql("""
            SELECT source_file, count(*) AS n FROM (
              SELECT source_file FROM raw.policies UNION ALL SELECT source_file FROM raw.incidents
              UNION ALL SELECT source_file FROM raw.claim_valuations UNION ALL SELECT source_file FROM raw.quarantine)
            GROUP BY ALL""").pl()
    assert (counts["delivered"] == counts["loaded"] + counts["quarantined"]).all()
    joined = files.join(counts, on="source_file", how="left").join(stored, on="source_file", how="left")
    assert joined["delivered"].null_count() == 0, "every regular file must be loaded"
    assert (joined["rows"] == joined["delivered"]).all()
    assert (joined["n"] == joined["delivered"]).all()


def test_file_level_defects(sample):
    files = sample.truth("files")
    with sample.con() as con:
        submissions = con.sql("SELECT source_file, status, error, warnings FROM raw.submissions").pl()
        seen = con.sql("SELECT source_file, submission_id, is_resubmission FROM raw.submission_files").pl()
    kinds = set(files["kind"])
    assert {"resubmission", "truncated", "extra_column", "unknown_layout"} <= kinds
    for source_file, kind in files.select("source_file", "kind").iter_rows():
        if kind == "resubmission":
            row = seen.filter(pl.col("source_file") == source_file)
            assert row["is_resubmission"].to_list() == [True]
            assert submissions.filter(pl.col("source_file") == source_file).is_empty()
        elif kind in ("truncated", "unknown_layout"):
            row = submissions.filter(pl.col("source_file") == source_file)
            assert row["status"].to_list() == ["rejected"]
            assert ("truncated" if kind == "truncated" else "unknown layout") in row["error"][0]
        elif kind == "extra_column":
            row = submissions.filter(pl.col("source_file") == source_file)
            assert row["status"].to_list() == ["loaded"]
            assert any("unexpected column" in w for w in row["warnings"][0])
    assert seen.height == files.height


def test_landing_files_all_accounted_for(sample):
    everything = sorted(p.relative_to(sample.landing).as_posix() for p in sample.landing.rglob("*") if p.is_file())
    manifests = {f for f in everything if f.endswith(".manifest.json")}
    delivered = [f for f in everything if f not in manifests]
    with sample.con() as con:
        seen = sorted(r[0] for r in con.execute("SELECT source_file FROM raw.submission_files").fetchall())
        recorded = {r[0] for r in con.execute(
            "SELECT manifest_file FROM raw.submission_gate WHERE manifest_file IS NOT NULL").fetchall()}
    assert seen == delivered
    # Every manifest belongs to a delivered data file, and every loaded file's manifest was read
    # (a resubmitted file loads nothing, so its manifest copy is not read again).
    assert manifests and {m.removesuffix(".manifest.json") for m in manifests} <= set(delivered)
    assert recorded <= manifests and len(recorded) >= len(manifests) - 5
