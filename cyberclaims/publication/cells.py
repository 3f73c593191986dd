"""Disclosure control of the published aggregates (the `agg_*` marts): primary and secondary cell
suppression, applied to a candidate version before its audit.

DESIGN.md §5: a published figure covers at least `publication_k_insureds` insureds and
`publication_k_insurers` insurers, none above `publication_dominance_share` of its amount. The marts
compute, for every cell and population behind its figures (policies in force, policies written, claims,
loss events), who is behind it and a status column (dbt macros `cell_contributors`, `cell_status`):
'published', or the first rule the cell fails. The row-level tables are generalised until every
published combination meets the rule; a cube of exact aggregates would undo that (a one-policy cell
gives one insured's premium, with a segment finer than its published row), so:

- **primary suppression**: the figures of a cell whose status is not 'published' are published as null;
- **secondary suppression**: the aggregates are additive along every segment dimension (a cell with a
  dimension at 'all' is the sum of that dimension's values), along the months of a year (monthly
  exposure and the yearly exposure of agg_loss_ratios) and along the quarters of a year (the triangles'
  quarterly and yearly accident periods at one evaluation date). Each such sum is a *line*: its parts and
  its total. A line with exactly one hidden entry gives it back by subtraction, so while one does, the
  line's cheapest other entry (a part before the total, the smallest non-zero amount first) is hidden
  too, with status 'secondary', until no line holds exactly one. This closes every subtraction within one
  line; combinations across lines are not solved for (the regulator pack, with few small tables, does
  that with its linear-programming audit).
- **linked figures**: a figure published in two tables is one entry — the claims and incurred of a year
  and segment (agg_frequency_severity, agg_loss_ratios), its exposure (the same two), the latest
  cumulative of the chain ladder (the triangle's cell at the latest age) and the projected ultimate of
  agg_loss_ratios (the chain ladder's yearly incurred): hiding one hides the other.
- Statistics that are one contributor's value by nature (maxima, the 99th percentile of a handful of
  claims) are not published at all (dbt `publication: exclude` on those columns); the development
  factors and the reporting lags' means and quantiles are published where their cell is.

`protect` does all of this in the candidate database and returns the counts the manifest records;
`violations` is the audit's independent re-check on the closed candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

PUBLISHED, SECONDARY = "published", "secondary"
SEGMENT = ("sector_code", "size_band", "product_type", "province_code", "pilot_cohort")
TOTAL = "all"


@dataclass(frozen=True)
class Group:
    """The figures of one population of a cell, hidden together when its status column says so."""

    status: str
    figures: tuple[str, ...]
    cost: str | None = None  # the amount secondary suppression weighs (None: no additive line)


@dataclass(frozen=True)
class Aggregate:
    table: str
    keys: tuple[str, ...]
    dims: tuple[str, ...]
    groups: tuple[Group, ...]
    # Figures computed from several groups: null when any of them is hidden.
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)


AGGREGATES = (
    Aggregate("agg_exposure_monthly", ("month_start",), SEGMENT, (
        Group("disclosure_status", ("earned_exposure_years", "earned_premium_cny", "policies_in_force"),
              "earned_premium_cny"),
        Group("written_disclosure_status", ("written_premium_cny", "policies_written"), "written_premium_cny"))),
    Aggregate("agg_loss_ratios", ("accident_year",), SEGMENT, (
        Group("disclosure_status", ("earned_premium_cny", "exposure_years"), "earned_premium_cny"),
        Group("claims_disclosure_status", ("claims", "incurred_cny"), "incurred_cny"),
        Group("ultimate_disclosure_status", ("ultimate_incurred_cny",))),
        {"incurred_loss_ratio": ("disclosure_status", "claims_disclosure_status"),
         "ultimate_loss_ratio": ("disclosure_status", "ultimate_disclosure_status")}),
    Aggregate("agg_frequency_severity", ("accident_year",), SEGMENT, (
        Group("disclosure_status", ("claims", "loss_events", "incurred_cny", "severity_mean", "severity_median",
                                    "severity_p90", "event_severity_mean", "event_severity_median",
                                    "event_severity_p90"), "incurred_cny"),
        Group("exposure_disclosure_status", ("exposure_years",), "exposure_years")),
        {"claim_frequency": ("disclosure_status", "exposure_disclosure_status"),
         "loss_event_frequency": ("disclosure_status", "exposure_disclosure_status")}),
    Aggregate("agg_loss_triangles", ("accident_period_type", "accident_period_start", "development_age_months",
                                     "evaluation_date"), SEGMENT, (
        Group("disclosure_status", ("paid_cny", "incurred_cny", "reported_claims", "closed_claims"), "incurred_cny"),)),
    Aggregate("agg_chain_ladder", ("accident_period_type", "accident_period_start", "measure"), SEGMENT, (
        Group("disclosure_status", ("latest_cny", "ultimate_cny", "ibnr_cny")),)),
    Aggregate("agg_development_factors", ("accident_period_type", "measure", "development_age_months"), SEGMENT, (
        Group("disclosure_status", ("age_to_age_factor", "cdf_to_ultimate", "n_accident_periods")),)),
    Aggregate("agg_reporting_lag", (), ("incident_type", "sector_code"), (
        Group("disclosure_status", tuple(
            f"{lag}_{figure}" for lag in ("occurrence_to_discovery", "discovery_to_report", "occurrence_to_report")
            for figure in ("n", "mean_days", "median_days", "p90_days")) + ("loss_events",), "loss_events"),)),
    Aggregate("agg_security_score_lift", (), ("risk_score_band", "sector_code"), (
        Group("disclosure_status", ("policies", "exposure_years"), "exposure_years"),
        Group("claims_disclosure_status", ("claims", "severity_mean", "severity_median"), "claims")),
        {"claim_frequency": ("disclosure_status", "claims_disclosure_status"),
         "frequency_relativity": ("disclosure_status", "claims_disclosure_status"),
         "severity_relativity": ("claims_disclosure_status",)}),
)
BY_TABLE = {a.table: a for a in AGGREGATES}

# One figure published in two places: (table, status) pairs whose cells with equal keys are one entry.
# The first holds every cell with a non-zero figure (agg_frequency_severity has a cell wherever there are
# claims, agg_loss_ratios wherever there is premium); its lines are the ones walked.
SAME_FIGURE = (
    (("agg_frequency_severity", "disclosure_status"), ("agg_loss_ratios", "claims_disclosure_status")),
    (("agg_loss_ratios", "disclosure_status"), ("agg_frequency_severity", "exposure_disclosure_status")),
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


@dataclass
class _Entries:
    """Every (table, group) cell as one frame: row id, node id, status, hidden flag, cost, coordinates."""

    frames: dict[tuple[str, str], pd.DataFrame]

    def all(self) -> pd.DataFrame:
        return pd.concat([f[["node", "hidden", "cost"]] for f in self.frames.values()], ignore_index=True)


def _load(con: duckdb.DuckDBPyConnection, present: set[str]) -> _Entries:
    frames, offset = {}, 0
    for agg in AGGREGATES:
        if agg.table not in present:
            continue
        for group in agg.groups:
            cost = f"coalesce(abs(CAST({_q(group.cost)} AS DOUBLE)), 0)" if group.cost else "0"
            columns = ", ".join(_q(c) for c in (*agg.keys, *agg.dims))
            frame = con.execute(
                f"SELECT rowid AS rid, {columns}{',' if columns else ''} {_q(group.status)} AS status, "
                f"{cost} AS cost FROM {_q(agg.table)}").df()
            frame["node"] = np.arange(offset, offset + len(frame))
            offset += len(frame)
            frame["hidden"] = frame["status"] != PUBLISHED
            for column in agg.keys + agg.dims:
                frame[column] = frame[column].astype(str)
            frames[(agg.table, group.status)] = frame
    # A figure published twice is one entry: the second table's cells take the first's nodes.
    for (first, second) in SAME_FIGURE:
        if first in frames and second in frames:
            agg = BY_TABLE[first[0]]
            coordinates = list(agg.keys + agg.dims)
            merged = frames[second].merge(frames[first][coordinates + ["node", "hidden"]], on=coordinates,
                                          how="left", suffixes=("", "_first"))
            matched = merged["node_first"].notna()
            merged.loc[matched, "hidden"] = merged.loc[matched, "hidden"] | merged.loc[matched, "hidden_first"].astype(bool)
            merged.loc[matched, "node"] = merged.loc[matched, "node_first"].astype(int)
            frames[second] = merged.drop(columns=["node_first", "hidden_first"])
            hidden_nodes = set(frames[second].loc[frames[second]["hidden"], "node"])
            frames[first]["hidden"] = frames[first]["hidden"] | frames[first]["node"].isin(hidden_nodes)
    return _Entries(frames)


def _lines(entries: _Entries) -> pd.DataFrame:
    """(line, node, is_total) for every additive line: a segment dimension within each table and group,
    the months of a year, the quarters of a year at one evaluation date."""
    parts, offset = [], 0

    def add(frame: pd.DataFrame, by: list[str], total: pd.Series) -> None:
        nonlocal offset
        if frame.empty:
            return
        ids = frame.groupby(by, sort=False, dropna=False).ngroup().to_numpy() if by else np.zeros(len(frame), int)
        parts.append(pd.DataFrame({"line": ids + offset, "node": frame["node"].to_numpy(),
                                   "is_total": total.to_numpy()}))
        offset += int(ids.max()) + 1

    for (table, status), frame in entries.frames.items():
        agg = BY_TABLE[table]
        group = next(g for g in agg.groups if g.status == status)
        if group.cost is None or (table, status) in {s for _, s in SAME_FIGURE}:
            continue  # not additive, or the same entries as the first table's (its lines are the same)
        for d in agg.dims:
            add(frame, [c for c in agg.keys + agg.dims if c != d], frame[d] == TOTAL)

    # The months of a year: agg_exposure_monthly's in-force cells and agg_loss_ratios' yearly premium.
    months = entries.frames.get(("agg_exposure_monthly", "disclosure_status"))
    years = entries.frames.get(("agg_loss_ratios", "disclosure_status"))
    if months is not None and years is not None:
        m = months.assign(year=months["month_start"].str[:4])
        y = years.assign(year=years["accident_year"].str[:4])
        both = pd.concat([m[["year", *SEGMENT, "node"]].assign(t=False), y[["year", *SEGMENT, "node"]].assign(t=True)])
        add(both, ["year", *SEGMENT], both["t"])
    # The quarters of a year at one evaluation date: the triangles' quarterly and yearly cells.
    cells = entries.frames.get(("agg_loss_triangles", "disclosure_status"))
    if cells is not None:
        c = cells[cells["evaluation_date"].str[5:10] == "12-31"]  # where a yearly cell can be
        c = c.assign(year=c["accident_period_start"].str[:4])
        add(c, ["year", "evaluation_date", *SEGMENT], c["accident_period_type"] == "year")
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["line", "node", "is_total"])


def _arrays(entries: _Entries) -> tuple[np.ndarray, np.ndarray]:
    """Hidden flag and cost per node id (node ids index the arrays)."""
    nodes = entries.all().drop_duplicates("node")
    size = int(nodes["node"].max()) + 1 if len(nodes) else 0
    hidden, cost = np.zeros(size, bool), np.zeros(size)
    hidden[nodes["node"].to_numpy()] = nodes["hidden"].to_numpy(bool)
    cost[nodes["node"].to_numpy()] = nodes["cost"].to_numpy(float)
    return hidden, cost


def _exposed(lines: pd.DataFrame, hidden: np.ndarray) -> np.ndarray:
    """Per line id: whether it holds exactly one hidden entry among two or more."""
    line = lines["line"].to_numpy()
    if not len(line):
        return np.zeros(0, bool)
    counted = np.bincount(line)
    hidden_in = np.bincount(line, weights=hidden[lines["node"].to_numpy()], minlength=len(counted))
    return (hidden_in == 1) & (counted >= 2)


def _secondary(entries: _Entries, lines: pd.DataFrame) -> set[int]:
    hidden, cost = _arrays(entries)
    initially = hidden.copy()
    line, node, total = (lines[c].to_numpy() for c in ("line", "node", "is_total"))
    while True:
        bad = _exposed(lines, hidden)
        if not bad.any():
            return set(np.flatnonzero(hidden & ~initially).tolist())
        candidate = bad[line] & ~hidden[node]
        c_line, c_node, c_total = line[candidate], node[candidate], total[candidate].astype(bool)
        c_cost = cost[c_node]
        # Per line: a part before the total, a non-zero amount before a zero, the smallest, the lowest id.
        order = np.lexsort((c_node, c_cost, c_cost == 0, c_total, c_line))
        ordered = c_line[order]
        first = np.ones(len(ordered), bool)
        first[1:] = ordered[1:] != ordered[:-1]
        hidden[c_node[order][first]] = True


def protect(con: duckdb.DuckDBPyConnection) -> dict:
    """Primary and secondary suppression of the published aggregates in the candidate `con`; the counts
    per table and status column ({table: {status_column: {status: cells}}})."""
    present = _tables(con) & set(BY_TABLE)
    entries = _load(con, present)
    secondary = _secondary(entries, _lines(entries))
    for (table, status), frame in entries.frames.items():
        # Hidden by the linked figure or by secondary suppression: marked, then the figures are nulled.
        marked = frame[(frame["status"] == PUBLISHED) & (frame["hidden"] | frame["node"].isin(secondary))]
        if not marked.empty:
            con.register("marked_cells", pd.DataFrame({"rid": marked["rid"].to_numpy()}))
            con.execute(f"UPDATE {_q(table)} SET {_q(status)} = '{SECONDARY}' "
                        "WHERE rowid IN (SELECT rid FROM marked_cells)")
            con.unregister("marked_cells")
    _follow(con, present)
    for table in present:
        agg = BY_TABLE[table]
        for group in agg.groups:
            con.execute(f"UPDATE {_q(table)} SET " + ", ".join(f"{_q(f)} = NULL" for f in group.figures)
                        + f" WHERE {_q(group.status)} <> '{PUBLISHED}'")
        for figure, statuses in agg.derived.items():
            con.execute(f"UPDATE {_q(table)} SET {_q(figure)} = NULL WHERE "
                        + " OR ".join(f"{_q(s)} <> '{PUBLISHED}'" for s in statuses))
    if "agg_security_score_lift" in present:
        # A relativity is the band's figure over its sector's: hidden where the sector's is.
        con.execute("""UPDATE agg_security_score_lift AS band SET frequency_relativity = NULL, severity_relativity = NULL
                       FROM agg_security_score_lift AS overall
                       WHERE overall.sector_code = band.sector_code AND overall.risk_score_band = 'all'
                         AND (overall.disclosure_status <> 'published' OR overall.claims_disclosure_status <> 'published')""")
    return {table: {group.status: dict(con.execute(
        f"SELECT {_q(group.status)}, count(*) FROM {_q(table)} GROUP BY ALL ORDER BY ALL").fetchall())
        for group in BY_TABLE[table].groups} for table in sorted(present)}


def _follow(con: duckdb.DuckDBPyConnection, present: set[str]) -> None:
    """Figures that are another table's cell take its status: the chain ladder's latest cumulative is the
    triangle's cell at the latest age; agg_loss_ratios' projected ultimate is the chain ladder's."""
    if {"agg_chain_ladder", "agg_loss_triangles"} <= present:
        con.execute(f"""UPDATE agg_chain_ladder AS cl SET disclosure_status = '{SECONDARY}'
                        FROM agg_loss_triangles AS tri
                        WHERE cl.disclosure_status = '{PUBLISHED}' AND tri.disclosure_status <> '{PUBLISHED}'
                          AND tri.accident_period_type = cl.accident_period_type
                          AND tri.accident_period_start = cl.accident_period_start
                          AND tri.development_age_months = (
                              SELECT max(t2.development_age_months) FROM agg_loss_triangles AS t2
                              WHERE t2.accident_period_type = cl.accident_period_type
                                AND t2.accident_period_start = cl.accident_period_start
                                AND """ + " AND ".join(f"t2.{d} = cl.{d}" for d in SEGMENT) + """)
                          AND """ + " AND ".join(f"tri.{d} = cl.{d}" for d in SEGMENT))
    if {"agg_loss_ratios", "agg_chain_ladder"} <= present:
        con.execute(f"""UPDATE agg_loss_ratios AS lr SET ultimate_disclosure_status = '{SECONDARY}'
                        FROM agg_chain_ladder AS cl
                        WHERE lr.ultimate_disclosure_status = '{PUBLISHED}' AND cl.disclosure_status <> '{PUBLISHED}'
                          AND cl.accident_period_type = 'year' AND cl.measure = 'incurred'
                          AND year(cl.accident_period_start) = lr.accident_year
                          AND """ + " AND ".join(f"cl.{d} = lr.{d}" for d in SEGMENT))


def violations(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """What the audit refuses, on a closed candidate: published agg_* tables without a disclosure spec,
    figures published for a hidden cell, lines whose one hidden entry follows by subtraction."""
    present = _tables(con)
    found = {f"{t}: no disclosure spec (publication.cells.AGGREGATES)": 1
             for t in present if t.startswith("agg_") and t not in BY_TABLE}
    for table in present & set(BY_TABLE):
        agg = BY_TABLE[table]
        for group in agg.groups:
            n = con.execute(f"SELECT count(*) FROM {_q(table)} WHERE {_q(group.status)} <> '{PUBLISHED}' AND ("
                            + " OR ".join(f"{_q(f)} IS NOT NULL" for f in group.figures) + ")").fetchall()[0][0]
            if n:
                found[f"{table}.{group.status}: hidden cells with a published figure"] = n
    entries = _load(con, present & set(BY_TABLE))
    exposed = int(_exposed(_lines(entries), _arrays(entries)[0]).sum())
    if exposed:
        found["lines with exactly one hidden entry (it follows by subtraction)"] = exposed
    return found
