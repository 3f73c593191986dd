"""The trust measures (publication.trust) on a small hand-made published file and warehouse: an insurer
signature, k-anonymity of the quasi-identifiers and the row order are found where they are planted."""

from pathlib import Path

import duckdb
import pytest

from publication.trust import RowLevelTable, differences, measure

SPEC = RowLevelTable("fct_policies", ("policy_key",),
                     "SELECT policy_key, insurer_id AS _insurer, insured_key AS _insured FROM wh.marts.fct_policies")


def _files(tmp_path: Path, rows: list[tuple], order: str) -> tuple[Path, Path]:
    """A warehouse mart and the published table built from it in `order`; rows are
    (policy_key, insured_key, insurer_id, currency, province_code)."""
    warehouse, published = tmp_path / "wh.duckdb", tmp_path / "pub.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.fct_policies (policy_key VARCHAR, insured_key VARCHAR, insurer_id VARCHAR, "
                    "currency VARCHAR, province_code VARCHAR)")
        con.executemany("INSERT INTO marts.fct_policies VALUES (?, ?, ?, ?, ?)", rows)
    with duckdb.connect(str(published)) as con:
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        con.execute("CREATE TABLE fct_policies AS SELECT policy_key, currency, province_code FROM wh.marts.fct_policies "
                    f"ORDER BY {order}")
    return published, warehouse


@pytest.fixture
def market() -> list[tuple]:
    """Three insurers, 30 policies each, 90 insureds; insurer c alone writes HKD; province 11 holds
    insureds of every insurer; each insurer has two more provinces of two insureds each (its own)."""
    rows = []
    for i in range(90):
        insurer = "abc"[i // 30]
        province = "11" if i % 30 < 26 else f"{insurer}{(i % 30) // 28}"
        rows.append((f"p{i:03d}", f"s{i:03d}", insurer, "HKD" if insurer == "c" else "CNY", province))
    return rows


def test_a_currency_one_insurer_writes_is_its_signature(tmp_path, market):
    (result,) = measure(*_files(tmp_path, market, "policy_key"), tables=(SPEC,))
    singles = {(s.columns, s.value) for s in result.signatures if len(s.columns) == 1}
    assert (("currency",), "HKD") in singles
    assert result.signature_rows == 30
    # CNY is written by two insurers, 30 rows each: no signature.
    assert (("currency",), "CNY") not in singles


def test_k_counts_distinct_insureds_and_insurers_per_combination(tmp_path, market):
    (result,) = measure(*_files(tmp_path, market, "policy_key"), tables=(SPEC,))
    assert result.quasi_identifiers == ("province_code",)
    assert (result.k_insureds, result.k_insurers) == (2, 1)
    # Six provinces of two insureds of one insurer: 12 rows.
    assert result.rows_below_k_insureds == 12
    assert result.rows_below_k_insurers == 12


def test_the_build_order_shows_and_a_hash_order_does_not(tmp_path, market):
    (built,) = measure(*_files(tmp_path, market, "policy_key"), tables=(SPEC,))
    assert built.same_insurer_as_previous == pytest.approx(87 / 89)
    assert built.same_insurer_by_chance == pytest.approx(1 / 3)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (hashed,) = measure(*_files(shuffled, market, "hash(policy_key, currency, province_code)"), tables=(SPEC,))
    assert hashed.same_insurer_as_previous < 0.5


def test_a_version_where_one_insurer_alone_changed_tells_its_rows_by_difference(tmp_path, market):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    previous, _ = _files(before, market, "policy_key")
    # Insurer b's next submission: three new policies and one corrected province.
    grown = [(*row[:4], "a0") if row[0] == "p030" else row for row in market]
    grown += [(f"q{i}", f"t{i}", "b", "CNY", "11") for i in range(3)]
    current, warehouse = _files(after, grown, "policy_key")
    (diff,) = differences(previous, current, warehouse, tables=(SPEC,))
    assert (diff.added, diff.removed, diff.changed) == (3, 0, 1)
    assert (diff.attributed, diff.insurers, diff.top_insurer_share) == (4, 1, 1.0)


def test_the_attribution_attack_learns_a_planted_currency(tmp_path, market):
    (result,) = measure(*_files(tmp_path, market, "policy_key"), tables=(SPEC,), classifier=True)
    # HKD gives away insurer c's 30 rows; a and b are told apart only where a province is their own.
    assert result.attribution_base_rate == pytest.approx(1 / 3)
    assert result.attribution_accuracy > result.attribution_base_rate + 0.25


@pytest.fixture(scope="module")
def sample_trust(sample, tmp_path_factory):
    """The trust measures of the sample market's published version 1, with the attribution tree."""
    from orchestration.defs.transformation.project import dbt_project
    from publication.publish import publication_metadata, publish, published_tables_from_manifest

    out = tmp_path_factory.mktemp("trust") / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    result = publish(sample.warehouse_path, out, published_tables_from_manifest(dbt_project().manifest_path), extra)
    return {t.table: t for t in measure(result.path, sample.warehouse_path, classifier=True)
            if " ⋈ " not in t.table}


@pytest.fixture(scope="module")
def sample_trust_all(sample, sample_trust, tmp_path_factory):
    """The same measures with the joined views (a claim with its policy, with its loss event)."""
    from orchestration.defs.transformation.project import dbt_project
    from publication.publish import publication_metadata, publish, published_tables_from_manifest

    out = tmp_path_factory.mktemp("trust_joined") / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    result = publish(sample.warehouse_path, out, published_tables_from_manifest(dbt_project().manifest_path), extra)
    return {t.table: t for t in measure(result.path, sample.warehouse_path)}


def test_no_published_row_level_table_carries_an_insurer_signature_or_an_exact_identifier(sample_trust):
    assert set(sample_trust) == {"fct_policies", "fct_claims", "fct_claim_valuations", "fct_loss_events"}
    assert {t: (r.signature_rows, r.exact_published) for t, r in sample_trust.items()} == {
        t: (0, ()) for t in sample_trust}


def test_published_rows_keep_no_build_order_and_a_tree_tells_no_insurer(sample_trust):
    for r in sample_trust.values():
        assert r.same_insurer_as_previous < r.same_insurer_by_chance + 0.05, r.table
        assert r.attribution_accuracy <= r.attribution_base_rate + 0.05, r.table


def test_every_published_policy_combination_covers_5_insureds_and_3_insurers(sample_trust):
    policies = sample_trust["fct_policies"]
    assert "disclosure_level" in policies.quasi_identifiers
    assert policies.k_insureds >= 5 and policies.k_insurers >= 3
    assert policies.rows_below_k_insureds == policies.rows_below_k_insurers == 0


@pytest.mark.parametrize("table", ["fct_claims", "fct_loss_events", "fct_claims ⋈ fct_policies"])
def test_every_published_claim_and_loss_event_combination_covers_5_insureds_and_3_insurers(sample_trust_all, table):
    """Claims measured alone and joined to their published policy (policy_key is published only where the
    joined class passes); loss events on their dates, type and records band, so none is unique on
    (dates, records band, sector)."""
    r = sample_trust_all[table]
    assert "disclosure_level" in r.quasi_identifiers
    assert r.k_insureds >= 5 and r.k_insurers >= 3, (table, r.k_insureds, r.k_insurers)
    assert r.rows_below_k_insureds == r.rows_below_k_insurers == 0
