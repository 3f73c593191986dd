"""Trust measures of a candidate published database: can a reader single out an insurer or an insured?

DESIGN.md §2 and §5: the published database identifies no contributing insurer and no insured. These
functions measure that promise as an attacker would test it, on a candidate published DuckDB file and the
internal warehouse it was built from (the warehouse's marts keep `insurer_id` and `insured_key`, which
the publication step drops or may re-key):

- **insurer signature**: a value of one published column (or a pair of values of two low-cardinality
  columns) carried by at least `min_rows` rows of which at least `dominance` come from one insurer. The
  share of rows that carry at least one signature is what a reader can attribute to an insurer outright.
- **k-anonymity of insureds**: for the declared quasi-identifiers an attacker knows of an insured (from a
  company register or a public incident report), the number of distinct insureds and of distinct
  insurers behind each combination published; the smallest, and how many rows sit in a combination
  below k insureds or below the minimum of insurers.
- **row order**: the probability that a published row comes from the same insurer as the row before it
  (physical order of the file), against the probability by chance (the sum of squared insurer shares).

Every published row is attributed to its insurer and insured by joining its published key back to the
warehouse (`ROW_LEVEL`); tables without a row-level spec (dimensions, aggregates) are not measured here.

The measures are group-by counts in DuckDB. pycanon (the maintained k-anonymity / l-diversity checker)
was considered: its releases pin pandas 2.3.3, numpy 2.0.2 and scipy 1.15.3 exactly, which the project's
lock (pandas 3.x, scipy 1.17) cannot hold, and it counts rows per class where the rule counts distinct
insureds and insurers (its l-diversity over insured_key / insurer_id is the same figure as below).

- **differencing** (`differences`): between two consecutive versions, the rows added, removed or changed
  and how many insurers they come from; a difference from one insurer is that insurer's submission.

Command line: `python -m cyberclaims.publication.trust <published.duckdb> <warehouse.duckdb> [--classifier]
[--previous <previous.duckdb>] [--json]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

# Thresholds of the rule (issue 16, DESIGN.md §5).
SIGNATURE_MIN_ROWS = 20
SIGNATURE_DOMINANCE = 0.95
# Columns with at most this many distinct values are also tested in pairs.
LOW_CARDINALITY = 30
# Row order: P(same insurer as the previous row) may exceed chance by at most this much.
ORDER_MARGIN = 0.05


def _dbt_var(name: str) -> float:
    """A publication threshold where the dbt project that generalises to it declares it."""
    import yaml

    project = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"
    value = yaml.safe_load(project.read_text(encoding="utf-8"))["vars"][name]
    return int(value) if float(value).is_integer() else float(value)


K_INSUREDS = _dbt_var("publication_k_insureds")
K_INSURERS = _dbt_var("publication_k_insurers")
# A difference between two versions must come from at least K_INSURERS insurers, none holding more than
# this share of its rows (the regulator pack's dominance rule).
DOMINANCE_SHARE = float(_dbt_var("publication_dominance_share"))

# What an attacker can know of an insured without the database: a company register (sector, industry,
# county, revenue, head count), the policy's inception from the insured itself or a broker, a public
# incident report (dates, records affected, type). Published generalisations of the same facts count too.
# A table's quasi-identifiers are those of these columns it publishes.
QUASI_IDENTIFIERS = (
    "disclosure_level", "sector_code", "industry_code", "region_code", "province_code", "region_group",
    "revenue_band", "headcount_band", "is_sme", "annual_revenue_cny", "employee_count",
    "inception_date", "inception_month", "inception_period", "inception_period_start",
    "incident_type", "occurred_date", "occurred_month", "discovered_date", "discovered_month",
    "reported_date", "reported_month", "records_affected", "records_affected_band",
    # Generalised forms published by the claims' and loss events' disclosure levels.
    "link_group", "occurred_period", "occurred_period_start", "accident_year", "date_period",
    "discovered_period_start", "reported_period_start", "resolved_period_start",
)


# Insurer-scoped pseudonymous keys: every row of one policy, claim or incident is one insurer's by
# construction, so a key value shared by many rows (a claim's valuations) says these rows belong together,
# not whose they are; they are not tested as signatures. Sector-level keys (loss_event_id,
# systemic_event_id) are.
INSURER_SCOPED_KEYS = ("policy_key", "claim_key", "incident_key")
# Exact values the rule forbids at row level (an insured's register entry, an insurer's currency book).
EXACT_FORBIDDEN = ("annual_revenue_cny", "employee_count", "region_code", "industry_code", "currency", "fx_rate",
                   "insured_key")


# Row-level amounts (published columns named *_cny) carry at most this many significant figures (dbt
# macro significant_round): the fen of an amount converted from another currency are that insurer's.
AMOUNT_SIGNIFICANT_FIGURES = 3


def unrounded_amounts(published: Path, tables: dict[str, list[str]],
                      digits: int = AMOUNT_SIGNIFICANT_FIGURES) -> dict[str, int]:
    """`table.column` → rows whose non-zero amount has more than `digits` significant figures, for the
    `*_cny` columns of the given published tables (table → its published columns)."""
    found = {}
    with duckdb.connect(str(published), read_only=True) as con:
        for table, columns in tables.items():
            amounts = [c for c in columns if c.endswith("_cny")]
            if not amounts:
                continue
            counts = con.execute("SELECT " + ", ".join(
                f"count(*) FILTER (WHERE {_q(c)} <> 0 AND abs(abs({_q(c)}) / power(10, floor(log10(abs({_q(c)}))) - "
                f"{digits - 1}) - round(abs({_q(c)}) / power(10, floor(log10(abs({_q(c)}))) - {digits - 1}))) > 1e-6)"
                for c in amounts) + f" FROM {_q(table)}").fetchall()[0]
            found.update({f"{table}.{c}": n for c, n in zip(amounts, counts, strict=True) if n})
    return found


@dataclass(frozen=True)
class RowLevelTable:
    """A published row-level table and how its rows are attributed in the warehouse.

    `attribution` is a query over the warehouse attached as `wh` returning the `keys` and, per row,
    `_insurer` (one insurer: a loss event several insurers share is attributed to the first by id) and
    `_insured`."""

    name: str
    keys: tuple[str, ...]
    attribution: str


ROW_LEVEL = (
    RowLevelTable("fct_policies", ("policy_key",),
                  "SELECT policy_key, insurer_id AS _insurer, insured_key AS _insured FROM wh.marts.fct_policies"),
    RowLevelTable("fct_claims", ("claim_key",),
                  "SELECT claim_key, insurer_id AS _insurer, insured_key AS _insured FROM wh.marts.fct_claims"),
    RowLevelTable("fct_claim_valuations", ("claim_key", "valuation_date"),
                  "SELECT v.claim_key, v.valuation_date, v.insurer_id AS _insurer, c.insured_key AS _insured "
                  "FROM wh.marts.fct_claim_valuations v LEFT JOIN wh.marts.fct_claims c USING (claim_key)"),
    RowLevelTable("fct_loss_events", ("loss_event_id",),
                  "SELECT loss_event_id, min(insurer_id) AS _insurer, min(insured_key) AS _insured "
                  "FROM wh.intermediate.int_incidents__linked GROUP BY loss_event_id"),
)


# Published fact tables that are not row level: each row gathers many insureds and insurers and
# suppresses its counts and amounts below the k and dominance rules itself (pub_fct_systemic_events).
AGGREGATE_FACTS = ("fct_systemic_events",)


@dataclass
class Signature:
    columns: tuple[str, ...]
    value: str
    rows: int
    top_share: float


@dataclass
class TableTrust:
    table: str
    rows: int
    attributed_rows: int
    insurers: int
    # Insurer signatures.
    signatures: list[Signature] = field(default_factory=list)
    signature_rows: int = 0
    signature_share: float = 0.0
    # Quasi-identifiers and k-anonymity.
    quasi_identifiers: tuple[str, ...] = ()
    combinations: int = 0
    k_insureds: int | None = None
    k_insurers: int | None = None
    rows_below_k_insureds: int = 0
    rows_below_k_insurers: int = 0
    unique_rows: int = 0  # rows whose combination belongs to one insured
    exact_published: tuple[str, ...] = ()  # EXACT_FORBIDDEN columns the table publishes
    # Row order.
    same_insurer_as_previous: float | None = None
    same_insurer_by_chance: float | None = None
    # Attribution attack (decision tree), when measured.
    attribution_accuracy: float | None = None
    attribution_base_rate: float | None = None

    @property
    def signature_columns(self) -> list[str]:
        return sorted({" × ".join(s.columns) for s in self.signatures})


@dataclass(frozen=True)
class JoinedView:
    """Two published tables a reader can join (`left.on = right.on`): the attacker's view of a `left` row
    is its quasi-identifiers together with those of the `right` row it joins (prefixed `right.`). Only
    k is measured on it; rows are `left`'s, attributed by `left`'s spec."""

    name: str
    left: str
    right: str
    on: str


JOINED = (
    # A claim joined to its published policy (policy_key is published only where this joined class passes).
    JoinedView("fct_claims ⋈ fct_policies", "fct_claims", "fct_policies", "policy_key"),
    # A claim joined to its loss event (loss_event_id, one event across insurers).
    JoinedView("fct_claims ⋈ fct_loss_events", "fct_claims", "fct_loss_events", "loss_event_id"),
    # Not a view: a valuation joined to its claim (claim_key). Valuations publish no quasi-identifier of their
    # own, so a valuation is as identifying as its claim, whose class fct_claims measures; counted over the
    # valuations only, a class would shrink wherever a claim's valuations wait for their month's peers
    # (pub_fct_claim_valuations) without the claim being any easier to tell.
)


def measure_joined(con: duckdb.DuckDBPyConnection, view: JoinedView, specs: dict[str, RowLevelTable]) -> TableTrust:
    """k-anonymity of the joined view: the left table's quasi-identifiers and the right's, together."""
    spec = specs[view.left]
    left_qis = [c for c in published_columns(con, view.left) if c in QUASI_IDENTIFIERS]
    right_qis = [c for c in published_columns(con, view.right) if c in QUASI_IDENTIFIERS]
    on = " AND ".join(f"l.{_q(k)} = a.{_q(k)}" for k in spec.keys)
    right_cols = ", ".join(f"r.{_q(c)} AS {_q(view.right + '.' + c)}" for c in right_qis)
    table = "_trust_joined"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT l.*{', ' + right_cols if right_cols else ''}, a._insurer, a._insured
        FROM pub.{_q(view.left)} l
        LEFT JOIN pub.{_q(view.right)} r ON l.{_q(view.on)} = r.{_q(view.on)}
        LEFT JOIN ({spec.attribution}) a ON {on}""")
    rows, attributed, insurers = con.execute(
        f"SELECT count(*), count(_insurer), count(DISTINCT _insurer) FROM {table}").fetchone()
    result = TableTrust(view.name, int(rows), int(attributed), int(insurers))
    result.quasi_identifiers = tuple(left_qis + [view.right + "." + c for c in right_qis])
    for name, value in anonymity(con, table, result.quasi_identifiers).items():
        setattr(result, name, value)
    con.execute(f"DROP TABLE {table}")
    return result


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def published_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'pub' AND table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall()]


def _attributed(con: duckdb.DuckDBPyConnection, spec: RowLevelTable) -> str:
    """A temp table of the published rows in their physical order (`_row`), with insurer and insured."""
    name = f"_trust_{spec.name}"
    keys = ", ".join(_q(k) for k in spec.keys)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT p.*, a._insurer, a._insured
        FROM (SELECT row_number() OVER () AS _row, * FROM pub.{_q(spec.name)}) p
        LEFT JOIN ({spec.attribution}) a USING ({keys})
        ORDER BY p._row""")
    return name


def signatures(con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
               min_rows: int = SIGNATURE_MIN_ROWS, dominance: float = SIGNATURE_DOMINANCE,
               low_cardinality: int = LOW_CARDINALITY) -> tuple[list[Signature], int]:
    """Signatures of single columns and of pairs of low-cardinality columns in the attributed table, and
    the number of rows carrying at least one. NULL is a value: a field one insurer does not deliver is
    its signature as surely as a code of its own."""
    cardinality = dict(zip(columns, con.execute(
        "SELECT " + ", ".join(f"count(DISTINCT {_q(c)}) + max(CASE WHEN {_q(c)} IS NULL THEN 1 ELSE 0 END)"
                              for c in columns) + f" FROM {table}").fetchone(), strict=True))
    groups = [(c,) for c in columns]
    low = [c for c in columns if cardinality[c] <= low_cardinality]
    groups += list(itertools.combinations(low, 2))
    con.execute("CREATE OR REPLACE TEMP TABLE _trust_signature_rows (_row BIGINT)")
    found: list[Signature] = []
    single: set[tuple[str, str]] = set()  # (column, value) signatures of one column
    for group in groups:
        cols = ", ".join(_q(c) for c in group)
        rows = con.execute(f"""
            WITH by_insurer AS (
                SELECT {cols}, _insurer, count(*) AS n FROM {table} WHERE _insurer IS NOT NULL GROUP BY ALL),
            by_value AS (
                SELECT {cols}, sum(n) AS total, max(n) AS top FROM by_insurer GROUP BY ALL)
            SELECT {cols}, total, top / total FROM by_value
            WHERE total >= $min_rows AND top >= $dominance * total""",
                           {"min_rows": min_rows, "dominance": dominance}).fetchall()
        if not rows:
            continue
        for *values, total, share in rows:
            shown = ["NULL" if v is None else str(v) for v in values]
            if len(group) == 1:
                single.add((group[0], shown[0]))
            elif any((c, v) in single for c, v in zip(group, shown, strict=True)):
                continue  # a pair that holds a one-column signature adds no row
            found.append(Signature(group, " | ".join(shown), int(total), float(share)))
        on = " AND ".join(f"t.{_q(c)} IS NOT DISTINCT FROM v.{_q(c)}" for c in group)
        con.execute(f"""
            INSERT INTO _trust_signature_rows
            SELECT t._row FROM {table} t
            JOIN (SELECT {cols} FROM (
                    SELECT {cols}, _insurer, count(*) AS n FROM {table} WHERE _insurer IS NOT NULL GROUP BY ALL)
                  GROUP BY ALL HAVING sum(n) >= $min_rows AND max(n) >= $dominance * sum(n)) v ON {on}""",
                    {"min_rows": min_rows, "dominance": dominance})
    carrying = con.execute("SELECT count(DISTINCT _row) FROM _trust_signature_rows").fetchone()[0]
    return found, int(carrying)


def anonymity(con: duckdb.DuckDBPyConnection, table: str, quasi_identifiers: tuple[str, ...],
              k_insureds: int = K_INSUREDS, k_insurers: int = K_INSURERS) -> dict:
    """k (distinct insureds) and l over insurers (distinct insurers) of every combination of the
    quasi-identifiers, and the rows in combinations below either threshold."""
    if not quasi_identifiers:
        return {}
    cols = ", ".join(_q(c) for c in quasi_identifiers)
    combos, k, k_ins, below_k, below_ins, unique = con.execute(f"""
        WITH classes AS (
            SELECT {cols}, count(*) AS n, count(DISTINCT _insured) AS insureds,
                   count(DISTINCT _insurer) AS insurers
            FROM {table} GROUP BY ALL)
        SELECT count(*), min(insureds), min(insurers),
               coalesce(sum(n) FILTER (WHERE insureds < $k), 0),
               coalesce(sum(n) FILTER (WHERE insurers < $l), 0),
               coalesce(sum(n) FILTER (WHERE insureds = 1), 0)
        FROM classes""", {"k": k_insureds, "l": k_insurers}).fetchone()
    return {"combinations": int(combos), "k_insureds": k, "k_insurers": k_ins, "rows_below_k_insureds": int(below_k),
            "rows_below_k_insurers": int(below_ins), "unique_rows": int(unique)}


def row_order(con: duckdb.DuckDBPyConnection, table: str) -> tuple[float | None, float | None]:
    """(P(same insurer as the previous row) in the file's order, the same probability by chance)."""
    observed = con.execute(f"""
        SELECT avg(CASE WHEN _insurer = previous THEN 1.0 ELSE 0.0 END) FROM (
            SELECT _insurer, lag(_insurer) OVER (ORDER BY _row) AS previous FROM {table})
        WHERE previous IS NOT NULL AND _insurer IS NOT NULL""").fetchone()[0]
    chance = con.execute(f"""
        SELECT sum(share * share) FROM (
            SELECT count(*) / sum(count(*)) OVER () AS share FROM {table} WHERE _insurer IS NOT NULL GROUP BY _insurer)
        """).fetchone()[0]
    return (None if observed is None else float(observed)), (None if chance is None else float(chance))


def order_margin(result: TableTrust) -> float:
    """How far above chance P(same insurer as the previous row) may be: ORDER_MARGIN, or three standard
    errors of that proportion on a table small enough for chance alone to go further (a random order of
    60 rows strays by 0.06 one time in seven)."""
    p, n = result.same_insurer_by_chance or 0.0, max(result.attributed_rows - 1, 1)
    return max(ORDER_MARGIN, 3 * math.sqrt(p * (1 - p) / n))


def attribution_accuracy(con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
                         folds: int = 5, seed: int = 0) -> tuple[float, float] | None:
    """(cross-validated accuracy of a decision tree telling each row's insurer from its published values,
    the base rate: the largest insurer's share). A stronger attacker than one who knows only its own rows:
    the tree is trained on labelled rows of every insurer. The folds are grouped by insured, so the tree is
    tested on insureds it never saw (a renewal or a claim's next valuation is not a row it learnt). Keys are
    left out (they are unique per row or insurer-scoped); text and lists become codes, dates days, numbers
    floats, NULL −1."""
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall())
    features = []
    for c in columns:
        if c in INSURER_SCOPED_KEYS or c.endswith("_id") or c.endswith("_key"):
            continue
        kind = types[c]
        if kind == "DATE":
            features.append(f"coalesce(CAST(date_diff('day', DATE '1970-01-01', {_q(c)}) AS DOUBLE), -1)")
        elif kind.startswith(("DECIMAL", "DOUBLE", "BIGINT", "INTEGER", "BOOLEAN", "FLOAT", "HUGEINT", "SMALLINT")):
            features.append(f"coalesce(CAST({_q(c)} AS DOUBLE), -1)")
        else:
            features.append(f"coalesce(CAST(dense_rank() OVER (ORDER BY CAST({_q(c)} AS VARCHAR)) AS DOUBLE), -1)")
    if not features:
        return None
    rows = con.execute(f"SELECT _insurer, coalesce(_insured, ''), {', '.join(features)} FROM {table} "
                       "WHERE _insurer IS NOT NULL "
                       "ORDER BY _row").fetchall()
    if len(rows) < folds * 10:
        return None
    import numpy as np

    y = np.array([r[0] for r in rows])
    groups = np.array([r[1] for r in rows])
    x = np.array([r[2:] for r in rows], dtype=float)
    _, counts = np.unique(y, return_counts=True)
    tree = DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)
    accuracy = float(cross_val_score(tree, x, y, groups=groups, cv=GroupKFold(folds)).mean())
    return accuracy, float(counts.max() / counts.sum())


def measure_table(con: duckdb.DuckDBPyConnection, spec: RowLevelTable, classifier: bool = False) -> TableTrust:
    columns = published_columns(con, spec.name)
    table = _attributed(con, spec)
    rows, attributed, insurers = con.execute(
        f"SELECT count(*), count(_insurer), count(DISTINCT _insurer) FROM {table}").fetchone()
    result = TableTrust(spec.name, int(rows), int(attributed), int(insurers))
    tested = [c for c in columns if c not in INSURER_SCOPED_KEYS]
    result.signatures, result.signature_rows = signatures(con, table, tested)
    result.signature_share = result.signature_rows / rows if rows else 0.0
    result.quasi_identifiers = tuple(c for c in QUASI_IDENTIFIERS if c in columns)
    result.exact_published = tuple(c for c in EXACT_FORBIDDEN if c in columns)
    for name, value in anonymity(con, table, result.quasi_identifiers).items():
        setattr(result, name, value)
    result.same_insurer_as_previous, result.same_insurer_by_chance = row_order(con, table)
    if classifier:
        attribution = attribution_accuracy(con, table, columns)
        if attribution:
            result.attribution_accuracy, result.attribution_base_rate = attribution
    con.execute(f"DROP TABLE {table}")
    return result


def measure(published: Path, warehouse: Path, tables: tuple[RowLevelTable, ...] = ROW_LEVEL,
            classifier: bool = False) -> list[TableTrust]:
    """The trust measures of every row-level table the published file holds."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{published}' AS pub (READ_ONLY)")
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'pub'").fetchall()}
        results = [measure_table(con, spec, classifier) for spec in tables if spec.name in present]
        specs = {spec.name: spec for spec in tables}
        results += [measure_joined(con, view, specs) for view in JOINED
                    if {view.left, view.right} <= present and view.left in specs]
        return results


@dataclass(frozen=True)
class AggregateLink:
    """A published aggregate whose cells sum an amount a row-level table publishes per row: a cell with one
    contributor (`contributors` = 1) publishes that row's exact amount together with the cell's segment."""

    aggregate: str
    contributors: str
    amount: str
    table: str
    column: str


AGGREGATE_LINKS = (
    AggregateLink("agg_exposure_monthly", "policies_written", "written_premium_cny", "fct_policies", "written_premium_cny"),
    AggregateLink("agg_frequency_severity", "claims", "incurred_cny", "fct_claims", "incurred_cny"),
    AggregateLink("agg_loss_ratios", "claims", "incurred_cny", "fct_claims", "incurred_cny"),
    AggregateLink("agg_loss_triangles", "reported_claims", "incurred_cny", "fct_claim_valuations", "incurred_cny"),
)


def aggregate_linkage(published: Path) -> list[dict]:
    """Per AGGREGATE_LINKS entry: the published rows whose exact amount equals the amount of a
    one-contributor cell of the aggregate (the cell's segment then attaches to the row, finer than its
    disclosure level). Measured and recorded; the aggregates do not yet apply the k rule to their cells."""
    results = []
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{published}' AS pub (READ_ONLY)")
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'pub'").fetchall()}
        for link in AGGREGATE_LINKS:
            if not {link.aggregate, link.table} <= present:
                continue
            rows, linked, cells = con.execute(f"""
                WITH single AS (
                    SELECT DISTINCT {_q(link.amount)} AS amount FROM pub.{_q(link.aggregate)}
                    WHERE {_q(link.contributors)} = 1 AND {_q(link.amount)} <> 0)
                SELECT (SELECT count(*) FROM pub.{_q(link.table)}),
                       (SELECT count(*) FROM pub.{_q(link.table)} WHERE {_q(link.column)} IN (SELECT amount FROM single)),
                       (SELECT count(*) FROM pub.{_q(link.aggregate)} WHERE {_q(link.contributors)} = 1)""").fetchone()
            results.append({"aggregate": link.aggregate, "table": link.table, "rows": int(rows),
                            "rows_linked": int(linked), "single_contributor_cells": int(cells)})
    return results


@dataclass
class TableDifference:
    """What two consecutive versions of a table tell by difference: the rows (by key) added, removed or
    with a changed published value, and whose they are. When one insurer's submission alone changed,
    the changed rows are that insurer's rows, whatever the rest of the table hides."""

    table: str
    added: int
    removed: int
    changed: int
    attributed: int  # changed or added rows the warehouse attributes (removed rows have left it)
    insurers: int
    top_insurer_share: float | None


def differences(previous: Path, current: Path, warehouse: Path,
                tables: tuple[RowLevelTable, ...] = ROW_LEVEL) -> list[TableDifference]:
    """The difference of every row-level table between two published versions."""
    results = []
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{previous}' AS prev (READ_ONLY)")
        con.execute(f"ATTACH '{current}' AS pub (READ_ONLY)")
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        in_both = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'prev' INTERSECT "
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'pub'").fetchall()}
        for spec in tables:
            if spec.name not in in_both:
                continue
            # Compared on the columns both versions publish.
            common = [c for c in published_columns(con, spec.name)
                      if c in {r[0] for r in con.execute(
                          "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'prev' "
                          "AND table_name = ?", [spec.name]).fetchall()}]
            keys = ", ".join(_q(k) for k in spec.keys)
            on = " AND ".join(f"n.{_q(k)} = o.{_q(k)}" for k in spec.keys)
            differs = " OR ".join(f"n.{_q(c)} IS DISTINCT FROM o.{_q(c)}" for c in common if c not in spec.keys) or "false"
            first = _q(spec.keys[0])
            added, removed, changed = con.execute(f"""
                SELECT count(*) FILTER (WHERE o.{first} IS NULL), count(*) FILTER (WHERE n.{first} IS NULL),
                       count(*) FILTER (WHERE n.{first} IS NOT NULL AND o.{first} IS NOT NULL AND ({differs}))
                FROM pub.{_q(spec.name)} n FULL JOIN prev.{_q(spec.name)} o ON {on}""").fetchone()
            by_insurer = con.execute(f"""
                WITH moved AS (
                    SELECT n.* FROM pub.{_q(spec.name)} n LEFT JOIN prev.{_q(spec.name)} o ON {on}
                    WHERE o.{first} IS NULL OR ({differs}))
                SELECT a._insurer, count(*) FROM moved JOIN ({spec.attribution}) a USING ({keys})
                GROUP BY ALL""").fetchall()
            attributed = sum(n for _, n in by_insurer)
            results.append(TableDifference(
                spec.name, int(added), int(removed), int(changed), int(attributed), len(by_insurer),
                max(n for _, n in by_insurer) / attributed if attributed else None))
    return results


def report_differences(results: list[TableDifference]) -> str:
    lines = []
    for d in results:
        share = "—" if d.top_insurer_share is None else f"{d.top_insurer_share:.0%}"
        lines.append(f"== {d.table}: {d.added:,} added, {d.removed:,} removed, {d.changed:,} changed; of the added and "
                     f"changed rows {d.attributed:,} attributed, from {d.insurers} insurer(s), the largest {share}")
    return "\n".join(lines)


def report(results: list[TableTrust], top: int = 8) -> str:
    lines = []
    for r in results:
        lines.append(f"== {r.table}: {r.rows:,} rows ({r.attributed_rows:,} attributed), {r.insurers} insurers")
        if " ⋈ " not in r.table:  # a joined view is measured for k only
            lines.append(f"   insurer signatures: {len(r.signatures)} value(s) in {len(r.signature_columns)} column(s)/pair(s); "
                         f"rows carrying one: {r.signature_rows:,} ({r.signature_share:.1%})")
            for s in sorted(r.signatures, key=lambda s: -s.rows)[:top]:
                lines.append(f"     {' × '.join(s.columns)} = {s.value}: {s.rows} rows, {s.top_share:.0%} one insurer")
            lines.append(f"   exact values forbidden at row level, published: {', '.join(r.exact_published) or 'none'}")
        if r.quasi_identifiers:
            lines.append(f"   quasi-identifiers: {', '.join(r.quasi_identifiers)}")
            lines.append(f"   combinations: {r.combinations:,}; k (insureds) = {r.k_insureds}, insurers = {r.k_insurers}; "
                         f"rows below {K_INSUREDS} insureds: {r.rows_below_k_insureds:,} "
                         f"({r.rows_below_k_insureds / r.rows:.1%}); below {K_INSURERS} insurers: "
                         f"{r.rows_below_k_insurers:,} ({r.rows_below_k_insurers / r.rows:.1%}); "
                         f"rows unique to one insured: {r.unique_rows:,}")
        if r.same_insurer_as_previous is not None:
            lines.append(f"   row order: P(same insurer as previous row) = {r.same_insurer_as_previous:.3f} "
                         f"(by chance {r.same_insurer_by_chance:.3f})")
        if r.attribution_accuracy is not None:
            lines.append(f"   attribution (decision tree, 5-fold): accuracy {r.attribution_accuracy:.3f} against a base "
                         f"rate of {r.attribution_base_rate:.3f} (+{r.attribution_accuracy - r.attribution_base_rate:.3f})")
    return "\n".join(lines)


def as_dict(results: list[TableTrust]) -> dict:
    return {r.table: {**asdict(r), "signatures": [asdict(s) for s in r.signatures]} for r in results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyberclaims.publication.trust", description=__doc__.split("\n\n")[0])
    parser.add_argument("published", type=Path, help="candidate published DuckDB file")
    parser.add_argument("warehouse", type=Path, help="internal warehouse DuckDB file it was built from")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--classifier", action="store_true",
                        help="also run the attribution attack (a scikit-learn decision tree)")
    parser.add_argument("--previous", type=Path,
                        help="the previous published version: also measure what the difference tells")
    args = parser.parse_args(argv)
    results = measure(args.published, args.warehouse, classifier=args.classifier)
    print(json.dumps(as_dict(results), indent=2, default=str) if args.json else report(results))
    links = aggregate_linkage(args.published)
    print(json.dumps(links, indent=2) if args.json else "\n".join(
        f"== {x['aggregate']} → {x['table']}: {x['rows_linked']:,} of {x['rows']:,} rows carry the exact amount of one of "
        f"{x['single_contributor_cells']:,} one-contributor cells" for x in links))
    if args.previous:
        diff = differences(args.previous, args.published, args.warehouse)
        print(json.dumps([asdict(d) for d in diff], indent=2) if args.json else report_differences(diff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
