"""The trust measures (publication.trust) on a small hand-made published file and warehouse: an insurer
signature, k-anonymity of the quasi-identifiers and the row order are found where they are planted."""

import json
from pathlib import Path

import duckdb
import pytest

from cyberclaims.publication.trust import RowLevelTable, differences, measure

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
def sample_published(sample, tmp_path_factory) -> Path:
    """The sample market's published version 1 (the real publication, audit included)."""
    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import publication_metadata, publish, published_tables_from_manifest

    out = tmp_path_factory.mktemp("trust") / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    return publish(sample.warehouse_path, out, published_tables_from_manifest(dbt_project().manifest_path), extra).path


@pytest.fixture(scope="module")
def sample_trust_all(sample, sample_published):
    """The trust measures of the sample's published version, the joined views and the attribution tree."""
    return {t.table: t for t in measure(sample_published, sample.warehouse_path, classifier=True)}


@pytest.fixture(scope="module")
def sample_trust(sample_trust_all):
    return {t: r for t, r in sample_trust_all.items() if " ⋈ " not in t}


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


@pytest.mark.parametrize("table", ["fct_claims", "fct_loss_events", "fct_claims ⋈ fct_policies",
                                   "fct_claims ⋈ fct_loss_events"])
def test_every_published_claim_and_loss_event_combination_covers_5_insureds_and_3_insurers(sample_trust_all, table):
    """Claims measured alone and joined to their published policy (policy_key is published only where the
    joined class passes); loss events on their dates, type and records band, so none is unique on
    (dates, records band, sector)."""
    r = sample_trust_all[table]
    assert any(q.split(".")[-1] == "disclosure_level" for q in r.quasi_identifiers)
    assert r.k_insureds >= 5 and r.k_insurers >= 3, (table, r.k_insureds, r.k_insurers)
    assert r.rows_below_k_insureds == r.rows_below_k_insurers == 0


# The attacker's generalisation of what it knows, level by level, as docs/actuaries.md documents the
# hierarchies: the published columns a row at that level carries, and the period of its dates.
POLICY_LEVELS = (
    (("sector_code", "province_code", "region_group", "revenue_band", "headcount_band", "is_sme"), "month"),
    (("sector_code", "region_group", "revenue_band", "headcount_band", "is_sme"), "quarter"),
    (("sector_code", "region_group", "is_sme"), "year"),
    (("sector_code",), "year"),
    (("sector_code",), None),
    ((), None),
)
EVENT_LEVELS = (
    (("sector_code", "incident_type", "link_group"), "month", ("occurred", "discovered", "reported", "resolved"),
     "decade"),
    (("sector_code", "link_group"), "quarter", ("occurred", "discovered", "reported", "resolved"), "thousands"),
    (("sector_code", "link_group"), "year", ("occurred",), "thousands"),
    (("sector_code",), "year", ("occurred",), None),
    (("sector_code",), None, (), None),
    ((), None, (), None),
)
RECORDS = {
    "decade": "CASE WHEN t.records_affected <= 0 THEN 0 ELSE CAST(power(10, floor(log10(t.records_affected))) AS BIGINT) END",
    "thousands": "CASE WHEN t.records_affected < 1 THEN 0 "
                 "ELSE CAST(power(1000, floor(log10(t.records_affected) / 3 + 1e-9)) AS BIGINT) END",
}


def _candidates(con, targets: str, table: str, key: str, clauses: list[str]) -> list[tuple]:
    """Per target (its own published key `_own`): the published rows an attacker cannot tell from it — at
    some level, the row's published values equal the target's known facts generalised to that level —
    the distinct insureds behind them (the truth, from the warehouse) and whether its own row is one."""
    union = " UNION ALL ".join(
        f"SELECT t._own, p.{key} FROM {targets} t JOIN pub.{table} p ON p.disclosure_level = {level} AND {clause}"
        for level, clause in enumerate(clauses))
    return con.execute(f"""
        WITH c AS ({union})
        SELECT c._own, count(DISTINCT c.{key}), count(DISTINCT a._insured), bool_or(c.{key} = c._own)
        FROM c JOIN _truth a ON c.{key} = a.{key} GROUP BY c._own""").fetchall()


def test_an_attacker_with_an_insureds_register_entry_and_inception_month_finds_5_insureds(sample, sample_published):
    """Re-identification (issue 16 §3): for every insured, what a company register and the insured's broker
    tell (exact revenue, head count, county, sector, inception month) leaves at least 5 insureds among the
    published policies consistent with it, and the insured's own policy is one of them. The same facts
    against exact published values (as before) single most insureds out."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{sample_published}' AS pub (READ_ONLY)")
        con.execute(f"ATTACH '{sample.warehouse_path}' AS wh (READ_ONLY)")
        con.execute("CREATE TEMP TABLE _truth AS SELECT policy_key, insured_key AS _insured FROM wh.marts.fct_policies")
        # The attacker's facts, generalised with the published dimensions (bands by their bounds).
        con.execute("""
            CREATE TEMP TABLE targets AS
            SELECT p.policy_key AS _own, p.sector_code, p.region_code, p.annual_revenue_cny, p.employee_count,
                   p.inception_date, left(p.region_code, 2) AS province_code, r.region_group,
                   rev.size_band AS revenue_band, hc.size_band AS headcount_band, p.is_sme
            FROM wh.marts.fct_policies p
            LEFT JOIN pub.dim_region r ON r.province_code = left(p.region_code, 2)
            LEFT JOIN pub.dim_size_band rev ON rev.band_type = 'revenue' AND p.annual_revenue_cny >= rev.lower_bound
                 AND (rev.upper_bound IS NULL OR p.annual_revenue_cny < rev.upper_bound)
            LEFT JOIN pub.dim_size_band hc ON hc.band_type = 'headcount' AND p.employee_count >= hc.lower_bound
                 AND (hc.upper_bound IS NULL OR p.employee_count < hc.upper_bound)""")
        clauses = []
        for columns, period in POLICY_LEVELS:
            terms = [f"p.{c} IS NOT DISTINCT FROM t.{c}" for c in columns]
            if period:
                terms.append(f"p.inception_period_start = CAST(date_trunc('{period}', t.inception_date) AS DATE)")
            clauses.append(" AND ".join(terms) or "true")
        found = _candidates(con, "targets", "fct_policies", "policy_key", clauses)
        exact = con.execute("""
            SELECT count(*) FILTER (WHERE insureds = 1), count(*) FROM (
                SELECT count(DISTINCT insured_key) AS insureds FROM wh.marts.fct_policies
                GROUP BY annual_revenue_cny, region_code, sector_code, date_trunc('month', inception_date))""").fetchall()[0]
        policies = con.execute("SELECT count(*) FROM wh.marts.fct_policies").fetchall()[0][0]
    assert len(found) == policies, "every policy is found among the published ones"
    assert all(own for *_, own in found), "the attacker's generalisation is the published one"
    assert min(insureds for _, _, insureds, _ in found) >= 5
    unique, combinations = exact
    assert unique > combinations / 2, "on exact values the same facts single most insureds out"


def test_a_news_report_of_a_breach_points_at_no_single_loss_event(sample, sample_published):
    """Linkage (issue 16 §3): for every loss event that reports records affected, its exact occurrence,
    discovery, report and resolution dates, records affected, sector and type (what a news report gives)
    match at least 5 insureds' published loss events, its own among them. On the exact values every such
    event is unique."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{sample_published}' AS pub (READ_ONLY)")
        con.execute(f"ATTACH '{sample.warehouse_path}' AS wh (READ_ONLY)")
        con.execute("CREATE TEMP TABLE _truth AS SELECT loss_event_id, min(insured_key) AS _insured "
                    "FROM wh.intermediate.int_incidents__linked GROUP BY ALL")
        con.execute("""
            CREATE TEMP TABLE targets AS
            SELECT e.loss_event_id AS _own, e.sector_code, e.incident_type, t.link_group, e.occurred_date,
                   e.discovered_date, e.reported_date, e.resolved_date, e.records_affected
            FROM wh.marts.fct_loss_events e LEFT JOIN pub.dim_incident_type t USING (incident_type)
            WHERE e.records_affected IS NOT NULL""")
        clauses = []
        for columns, period, dates, records in EVENT_LEVELS:
            terms = [f"p.{c} IS NOT DISTINCT FROM t.{c}" for c in columns]
            terms += [f"p.{d}_period_start IS NOT DISTINCT FROM CAST(date_trunc('{period}', t.{d}_date) AS DATE)"
                      for d in dates]
            if records:
                terms.append(f"p.records_affected_band = {RECORDS[records]}")
            clauses.append(" AND ".join(terms) or "true")
        found = _candidates(con, "targets", "fct_loss_events", "loss_event_id", clauses)
        targets = con.execute("SELECT count(*) FROM targets").fetchall()[0][0]
        exact_unique = con.execute("""
            SELECT count(*) FROM (SELECT count(*) AS n FROM wh.marts.fct_loss_events WHERE records_affected IS NOT NULL
                                  GROUP BY occurred_date, records_affected, sector_code) WHERE n = 1""").fetchall()[0][0]
    assert targets > 20 and len(found) == targets
    assert all(own for *_, own in found), "the attacker's generalisation is the published one"
    assert min(insureds for _, _, insureds, _ in found) >= 5
    assert exact_unique > targets * 0.9, "on the exact values a news report singles the event out"


def test_a_version_one_insurer_alone_changed_is_held_until_the_change_comes_from_3(sample, tmp_path):
    """Differencing (issue 16 §3): a version whose change since the published one comes from one insurer is
    not published (it would show that insurer's rows to anyone who kept the previous version); the change
    waits, and goes out once changes from >= 3 insurers, none above 85 %, hide it. A revocation is published
    at once. The manifest records the difference."""

    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import (
        PublicationHeld,
        existing_versions,
        publication_metadata,
        publish,
        published_manifest,
        published_tables_from_manifest,
    )
    from cyberclaims.quality.review import review

    warehouse = tmp_path / "wh.duckdb"
    sample.scratch_copy(warehouse)
    out = tmp_path / "published"
    tables = published_tables_from_manifest(dbt_project().manifest_path)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        extra = publication_metadata(con, dbt_project().project_dir)
        insurers = [r[0] for r in con.execute(
            "SELECT insurer_id FROM marts.fct_policies GROUP BY ALL ORDER BY count(*) DESC").fetchall()]
    assert publish(warehouse, out, tables, extra).version == 1

    def correct(insurer: str, n: int = 40) -> None:
        """A correction of n of the insurer's published policies (the premium's third significant figure
        up by one: the published amount stays on the grid)."""
        with duckdb.connect(str(warehouse)) as con:
            con.execute("""UPDATE marts.pub_fct_policies
                           SET written_premium_cny = written_premium_cny + power(10, floor(log10(written_premium_cny)) - 2)
                           WHERE policy_key IN (SELECT policy_key FROM marts.fct_policies WHERE insurer_id = ?
                                                ORDER BY policy_key LIMIT ?)""", [insurer, n])

    correct(insurers[0])
    with pytest.raises(PublicationHeld) as held:
        publish(warehouse, out, tables, extra, force=True)
    (difference,) = [c for c in held.value.results if not c.passed]
    assert difference.name == "difference_from_enough_insurers"
    assert "fct_policies: 40 rows added or changed from 1 insurer(s), the largest 100%" in difference.detail
    assert existing_versions(out) == [1]

    for insurer in insurers[1:4]:
        correct(insurer)
    published = publish(warehouse, out, tables, extra, force=True)
    assert published.version == 2
    (recorded,) = [d for d in published_manifest(out)["trust"]["differences"] if d["table"] == "fct_policies"]
    assert (recorded["changed"], recorded["insurers"], recorded["top_insurer_share"]) == (160, 4, 0.25)

    # The operator revokes one of the insurer's submissions: its withdrawal goes out alone.
    included = published_manifest(out)["submissions_included"]
    with duckdb.connect(str(warehouse)) as con:
        (revoked,) = con.execute("SELECT submission_id FROM control.submissions WHERE insurer_id = ? AND submission_id IN "
                                 "(SELECT unnest($1)) ORDER BY 1 LIMIT 1".replace("?", "$2"),
                                 [included, insurers[0]]).fetchall()[0]
        review(con, revoked, "revoke", "data office", "insurer withdrew the file")
    correct(insurers[0], 10)
    third = publish(warehouse, out, tables, extra, force=True)
    assert third.version == 3
    (check,) = [c for c in third.checks if c.name == "difference_from_enough_insurers"]
    assert check.passed and f"withdrawal of {revoked}" in check.detail


def test_the_manifest_records_k_signatures_and_generalised_rows(sample_published):
    with duckdb.connect(str(sample_published), read_only=True) as con:
        trust = json.loads(con.execute("SELECT value FROM publication_manifest WHERE key = 'trust'").fetchall()[0][0])
        levels = dict(con.execute("SELECT disclosure_level, count(*) FROM fct_policies GROUP BY ALL").fetchall())
        policies = con.execute("SELECT count(*) FROM fct_policies").fetchall()[0][0]
    assert trust["tables"]["fct_policies"]["k_insureds"] >= 5 and trust["tables"]["fct_policies"]["signature_rows"] == 0
    assert trust["generalised_rows"]["fct_policies"] == {str(k): v for k, v in sorted(levels.items())}
    assert sum(trust["generalised_rows"]["fct_policies"].values()) == policies
    assert {"fct_claims ⋈ fct_policies", "fct_claims ⋈ fct_loss_events"} <= set(trust["tables"])


def test_an_amount_converted_at_one_rate_is_refused_to_the_fen_and_published_on_the_grid(sample, tmp_path):
    """The fen of an amount converted from another currency are that insurer's (a EUR 2,200 reserve is
    CNY 17,099.99 on every claim so reserved): the audit refuses a published row-level amount with more
    than three significant figures; the published amounts are the warehouse's at three."""

    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import PublicationCheckFailed, publish, published_tables_from_manifest
    from tests.conftest import significant

    with sample.con() as con:
        exact = dict(con.execute("SELECT claim_key, incurred_cny FROM marts.fct_claims").fetchall())
        published = dict(con.execute("SELECT claim_key, incurred_cny FROM marts.pub_fct_claims").fetchall())
    assert published == {k: significant(v) for k, v in exact.items()}
    assert sum(v != significant(v) for v in exact.values()) > len(exact) / 2  # the warehouse keeps the fen

    warehouse = tmp_path / "wh.duckdb"
    sample.scratch_copy(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""UPDATE marts.pub_fct_claim_valuations SET case_reserve_cny = 17099.99
                       WHERE claim_key IN (SELECT claim_key FROM marts.pub_fct_claim_valuations
                                           ORDER BY claim_key LIMIT 7)""")
    with pytest.raises(PublicationCheckFailed) as refused:
        publish(warehouse, tmp_path / "published", published_tables_from_manifest(dbt_project().manifest_path), {})
    failed = {c.name: c.detail for c in refused.value.results if not c.passed}
    assert "row_level_amounts_rounded" in failed
    assert failed["row_level_amounts_rounded"].startswith("fct_claim_valuations.case_reserve_cny: ")
    assert not (tmp_path / "published" / "sector_claims.duckdb").exists()
