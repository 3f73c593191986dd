"""Every insurer layout, end to end: what the warehouse holds equals the generator's truth.

The insurers are those of the sample market (a valid config and a sample profile each), so every
layout the sample writes is checked and a config without a profile changes nothing here.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import JSON_FORMATS, is_month_label
from cyberclaims.ingestion.pseudonymize import normalize_identifier
from cyberclaims.ingestion.readers import read_sources
from cyberclaims.sample.market import MarketParams, simulate_market
from cyberclaims.sample.profiles import PROFILES_FILE, load_profiles, sample_market
from cyberclaims.sample.render import EXPECTED_REASON

CONFIGS = sample_market().configs
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


def test_the_sample_holds_every_insurer_of_the_sample_market(sample):
    assert sample.summary["insurers"] == INSURERS
    assert sorted(p.name for p in sample.landing.iterdir()) == INSURERS
    for rt in c.RECORD_TYPES:
        assert sorted(sample.truth(rt)["insurer_id"].unique()) == INSURERS


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
            FROM control.submissions s JOIN control.submission_counts k USING (submission_id)
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
        submissions = con.sql("SELECT source_file, status, error, warnings FROM control.submissions").pl()
        seen = con.sql("SELECT source_file, submission_id, is_resubmission FROM control.submission_files").pl()
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
        seen = sorted(r[0] for r in con.execute("SELECT source_file FROM control.submission_files").fetchall())
        recorded = {r[0] for r in con.execute(
            "SELECT manifest_file FROM control.submission_gate WHERE manifest_file IS NOT NULL").fetchall()}
    assert seen == delivered
    # Every manifest belongs to a delivered data file, and every loaded file's manifest was read
    # (a resubmitted file loads nothing, so its manifest copy is not read again).
    assert manifests and {m.removesuffix(".manifest.json") for m in manifests} <= set(delivered)
    assert recorded <= manifests and len(recorded) >= len(manifests) - 5


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("insurer", INSURERS)
def test_the_sample_exercises_the_variants_its_layout_states(sample, insurer):
    """What the truth test proves holds for every variant the config allows, not only the first: every date
    format of a text date, partial dates, blank parts of a sum, grouped digits and stripped symbols, each
    source of a coalesce. Read from the delivered files as the insurer wrote them (source text)."""
    cfg = CONFIGS[insurer]
    files = sample.truth("files").filter(
        (pl.col("insurer_id") == insurer) & pl.col("kind").is_in(["regular", "extra_column", "manifest_mismatch"]))
    frames: dict[str, list[pl.DataFrame]] = {}
    for source_file in files["source_file"]:
        path = sample.landing / source_file
        for rt, sf in read_sources(path, cfg, cfg.record_types_for_file(path.name)).items():
            frames.setdefault(rt, []).append(sf.frame)
    expected, seen = [], []
    for rt, parts in frames.items():
        frame = pl.concat(parts, how="diagonal_relaxed")
        fmt = cfg.read_spec(rt).format
        for name, src in cfg.sources(rt).items():
            kind = c.field_map(rt)[name].kind
            text_date = fmt in ("csv", *JSON_FORMATS) or all(is_month_label(f) for f in src.date_formats)
            if kind == "date" and src.delivery == "column" and text_date and len(src.date_formats) > 1:
                values = frame[src.paths[0]].drop_nulls().to_list()
                for f in src.date_formats:
                    expected.append(f"{rt}.{name} in {f}")
                    if any(_parses(v, f) for v in values):
                        seen.append(expected[-1])
            if src.delivery == "parts" and src.partial_dates != "reject" and None not in src.paths:
                year, _, day = (frame[p] for p in src.paths)
                expected.append(f"{rt}.{name} without a day")
                if (year.is_not_null() & day.is_null()).any():
                    seen.append(expected[-1])
            if src.delivery == "sum" and src.nulls == "zero":
                parts_present = frame.select(pl.col(p).is_not_null() for p in src.paths)
                expected.append(f"{rt}.{name} with a blank part")
                if parts_present.select(pl.any_horizontal(pl.all()) & ~pl.all_horizontal(pl.all())).to_series().any():
                    seen.append(expected[-1])
            if src.delivery == "coalesce":
                expected.append(f"{rt}.{name} from several sources")
                if sum(frame[p].is_not_null().any() for p in src.paths) > 1:
                    seen.append(expected[-1])
            if fmt == "csv" and kind in ("money", "revenue") and src.delivery == "column":
                raw = frame[src.paths[0]].drop_nulls()
                spec = cfg.record_types[rt].columns[name]
                stated_ts = any(getattr(level, "thousands_separator", None) is not None
                                for level in (spec, cfg.record_types[rt], cfg) if not isinstance(level, str))
                if stated_ts:
                    expected.append(f"{rt}.{name} with grouped digits")
                    if raw.str.contains(src.thousands_separator, literal=True).any():
                        seen.append(expected[-1])
                for token in src.strip:
                    expected.append(f"{rt}.{name} with {token}")
                    if raw.str.contains(token, literal=True).any():
                        seen.append(expected[-1])
    assert seen == expected


# --------------------------------------------------------------------------- the sample market follows the configs

SMALL = MarketParams(seed=11, n_insureds=400, first_month="2023-01", last_month="2023-12")


def test_a_config_without_a_sample_profile_is_not_in_the_sample_market():
    profiles = load_profiles()
    newcomer = next(iter(CONFIGS.values())).model_copy(update={"insurer_id": "newcomer_ins"})
    market = sample_market({**CONFIGS, "newcomer_ins": newcomer}, profiles)
    assert market.insurer_ids == [i for i in profiles if i in CONFIGS]
    assert market.left_out["newcomer_ins"] == "no sample profile"
    truth = simulate_market(SMALL, market.profiles)
    assert set(truth["policy"]["insurer_id"]) == set(market.insurer_ids)


def test_the_market_is_simulated_for_the_profiles_given_with_their_currencies():
    profiles = list(load_profiles().values())[-2:]
    truth = simulate_market(SMALL, profiles)
    assert truth["policy"].equals(simulate_market(SMALL, profiles)["policy"]), "seeded: equal params, equal market"
    for p in profiles:
        policies = truth["policy"].filter(pl.col("insurer_id") == p.insurer_id)
        assert set(policies["currency"]) == set(p.currencies)
        claims = truth["claim_valuation"].filter(pl.col("insurer_id") == p.insurer_id)
        assert set(claims["currency"]) <= set(p.currencies)
    # Co-insurance still links the two insurers of a two-insurer market.
    assert truth["insured"]["co_insurer"].drop_nulls().len() > 0


def test_an_invalid_profile_names_the_insurer_the_key_and_the_problem(tmp_path):
    text = PROFILES_FILE.read_text(encoding="utf-8").replace("currencies: {EUR: 1.0}", "currencies: {EUR: 0.5}")
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_profiles(path)
    assert str(path) in str(err.value) and "lindenhof_eu" in str(err.value) and "add up to 1" in str(err.value)
