"""Build the quarterly regulator pack: statistics, disclosure control, and the files.

`build_pack` reads the internal warehouse (read-only) and returns the protected `Pack` with an
internal `Audit` (who contributes to every cell and why each hidden one is hidden — for the
bureau, never for the regulator). `write_pack` writes the regulator's folder and, beside it, the
internal audit folder.

Disclosure control runs per table, period and group of figures: exposure figures (policies,
insureds, premium) and loss figures (incidents, claims, amounts, quantiles) of a cell have their
own contributors, so each group has its own suppression pattern; a ratio of the two (loss ratio,
frequency) is hidden when either is. Links between the tables of a pack:
- sector totals are published in sector × product and in sector × incident type;
- the grand total of a group is the same figure in every table of the period;
- sector × quarter repeats the quarter's sector totals (its column for the quarter) and the
  year-to-date sector totals (its total column);
- a cell hidden for the quarter is hidden for the year to date and the other way round: with the
  previous pack's year to date, either one would give the other by subtraction (and for the first
  quarter they are the same figure).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cyberclaims import csvsafe
from cyberclaims.publication.publish import PUBLISHED_NAME, published_manifest, published_version
from cyberclaims.regulator import disclosure
from cyberclaims.regulator.disclosure import TOTAL, DisclosureRules, ProtectedTable
from cyberclaims.regulator.model import (
    MEASURE_BY_CODE,
    NOT_AVAILABLE,
    SUPPRESSED,
    TABLE_SPECS,
    TOTAL_CODE,
    Cell,
    Pack,
    PackTable,
    TableSpec,
)
from cyberclaims.regulator.statistics import (
    CellStats,
    Key,
    PackError,
    Period,
    aggregate,
    attach,
    claims_without_occurrence,
    contributing_insurers,
    data_cutoff,
    labels,
    latest_complete_quarter,
    parse_quarter,
    quarter_period,
    ytd_period,
)
from cyberclaims.transformation.builds import built_from

DEFAULT_CONFIG = Path(__file__).with_name("pack.yaml")
GROUPS = ("exposure", "loss")
TOTAL_LABEL = ("合计", "Total")


@dataclass(frozen=True)
class PackConfig:
    rules: DisclosureRules


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Disclosure(_Strict):
    min_insurers: int = Field(ge=1)
    min_insureds: int = Field(ge=1)
    dominance_share: float = Field(gt=0, le=1)


class _PackFile(_Strict):
    """pack.yaml as written."""

    disclosure: _Disclosure

    @model_validator(mode="before")
    @classmethod
    def _bands_live_in_dbt(cls, doc):
        if isinstance(doc, dict) and "severity_bands" in doc:
            raise ValueError(
                "severity_bands are no longer set here: the claim size bands are reference data of the "
                "warehouse (dbt seed tax_claim_size_band), so the pack's table 7 and every other figure by "
                "band agree; change the seed and rebuild (`cyberclaims run`)")
        return doc


def load_config(path: Path | None = None) -> PackConfig:
    path = path or DEFAULT_CONFIG
    try:
        doc = _PackFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise PackError(f"{path}: not a valid regulator pack configuration ({exc})") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise PackError(f"{path}: not a valid regulator pack configuration ({problems})") from exc
    return PackConfig(DisclosureRules(**doc.disclosure.model_dump()))


@dataclass
class Audit:
    """Internal: every protected grid with its contributions and suppression reasons."""

    quarter: str
    grids: dict[str, ProtectedTable] = field(default_factory=dict)


def _groups_of(spec: TableSpec) -> list[str]:
    groups = {MEASURE_BY_CODE[m].group for m in spec.measures}
    return [g for g in GROUPS if g in groups or "both" in groups]


def _grid_name(table_key: str, group: str) -> str:
    return f"{table_key}:{group}"


def _dkey(key: Key) -> tuple[str, str]:
    """Pack cell key → disclosure key (margins as disclosure.TOTAL)."""
    return tuple(TOTAL if k == TOTAL_CODE else k for k in key)  # type: ignore[return-value]


def _pack_key(key: tuple) -> Key:
    """Disclosure key → pack cell key."""
    return tuple(TOTAL_CODE if k == TOTAL else k for k in key)  # type: ignore[return-value]


ADDITIVE = {g: tuple(m.code for m in MEASURE_BY_CODE.values() if m.group == g and m.additive) for g in GROUPS}


def _grid(stats: dict[Key, CellStats], rows: list[str], columns: list[str] | None, group: str,
          measures: Iterable[str]) -> ProtectedTable:
    cells = {}
    fragile = set()
    figures = {}
    additive = [m for m in ADDITIVE[group] if m in measures]
    keys = ([(r, c) for r in [*rows, TOTAL_CODE] for c in [*columns, TOTAL_CODE]] if columns is not None
            else [(r, TOTAL_CODE) for r in [*rows, TOTAL_CODE]])
    for key in keys:
        cell = stats.get(key)
        contribution = getattr(cell, group, None) if cell else None
        cells[_dkey(key)] = contribution.copy() if contribution else disclosure.Contribution()
        if any(not (cell and cell.values.get(m)) for m in additive):
            fragile.add(_dkey(key))
        figures[_dkey(key)] = {m: float(cell.values.get(m) or 0) if cell else 0.0 for m in additive}
    return ProtectedTable(list(rows), list(columns or []), cells, fragile=fragile, figures=figures)


def _universe(names: dict, dim: str, present: set[str], quarters: list[str]) -> list[str]:
    """Rows (or columns) a table lists: the whole taxonomy, plus codes the data holds beyond it."""
    if dim == "severity_band":  # in the bands' order
        base = [c for c in names[dim] if c != "unknown"]
    elif dim == "quarter":
        return quarters
    elif dim == "size":
        base = ["sme", "large"]
    elif dim == "pilot":
        base = sorted(c for c in names["pilot"] if c not in ("none", "unknown")) + ["none"]
    else:
        base = sorted(c for c in names[dim] if c != "unknown")
    return base + sorted(present - set(base) - {TOTAL_CODE})


def _label(names: dict, dim: str, code: str) -> tuple[str, str]:
    if code == TOTAL_CODE:
        return TOTAL_LABEL
    if dim == "quarter":
        return code, code
    return names.get(dim, {}).get(code, (code, code))


def check_published_version(con: duckdb.DuckDBPyConnection, published_dir: Path) -> int | None:
    """The version the warehouse marts were published as; an error when they have moved on since.

    A version's manifest records the inputs fingerprint of the dbt build it was published from
    (submissions with their gate decisions, raw row counts, dbt project, contract and code); the
    marts are that version's exactly when the warehouse's latest build has the same fingerprint. (The
    published row-level amounts are rounded, so the pack cannot compare sums with them.)"""
    version = published_version(published_dir)
    if version is None or not (published_dir / PUBLISHED_NAME).exists():
        return None
    published = published_manifest(published_dir).get("inputs_fingerprint")
    ours = built_from(con, "wh")
    if not published or ours != published:
        found = f"built from {ours[:12] if ours else 'no recorded build'}, published from " + (
            published[:12] if published else "an unrecorded build")
        raise PackError(
            f"the warehouse marts are not what was published as version {version} ({found}); publish first "
            "(`cyberclaims run`), so the pack matches a version")
    return version


def _checked_quarter(con: duckdb.DuckDBPyConnection, quarter: str | None) -> tuple[str, dt.date]:
    """The quarter asked for (default: the latest complete one), refused when the data do not cover it."""
    cutoff = data_cutoff(con)
    latest = latest_complete_quarter(cutoff)
    year, q = parse_quarter(quarter or latest)
    quarter = f"{year}Q{q}"
    if parse_quarter(latest) < (year, q):
        raise PackError(f"{quarter} is not complete: the data run to {cutoff}, the latest complete quarter is {latest}")
    first = con.execute("select min(inception_date) from wh.marts.fct_policies").fetchall()[0][0]
    if first is None or quarter_period(year, q).end < first:
        raise PackError(f"there are no data for {quarter}: the first policy incepts on {first}")
    return quarter, cutoff


def check_quarter(warehouse_path: Path, quarter: str | None) -> str:
    """Which quarter a pack would be built for; PackError when it cannot be."""
    with attach(warehouse_path) as con:
        return _checked_quarter(con, quarter)[0]


def build_pack(warehouse_path: Path, published_dir: Path, quarter: str | None = None,
               config: PackConfig | None = None) -> tuple[Pack, Audit]:
    config = config or load_config()
    with attach(warehouse_path) as con:
        quarter, cutoff = _checked_quarter(con, quarter)
        year, q = parse_quarter(quarter)
        version = check_published_version(con, published_dir)
        names = labels(con)
        protected = _protected(_Aggregates(con), names, year, q, config)
        undated = claims_without_occurrence(con)
    periods = {"quarter": quarter_period(year, q), "ytd": ytd_period(year, q)}
    tables = _tables(protected.stats, protected.layout, protected.grids, names, periods)
    caveats = [(f"{undated} 件赔案缺少事故发生日期，无法归入事故期，未计入赔案相关指标。",
                f"{undated} claims have no occurrence date and cannot be placed in an accident period; they are "
                "not in the claim figures.")] if undated else []
    if version is None:
        caveats.append(("行业赔案数据库尚未发布。", "The sector claims database has not been published yet."))
    pack = Pack(
        quarter=quarter, quarter_start=periods["quarter"].start, quarter_end=periods["quarter"].end,
        ytd_start=periods["ytd"].start, cutoff_date=cutoff, publication_version=version,
        built_at=dt.datetime.now(dt.UTC).replace(microsecond=0), contributing_insurers=protected.insurers,
        rules={"min_insurers": config.rules.min_insurers, "min_insureds": config.rules.min_insureds,
               "dominance_share": config.rules.dominance_share},
        tables=tables, suppression_summary=_summary(protected.grids), caveats=caveats,
    )
    return pack, Audit(quarter, protected.grids)


@dataclass
class Protected:
    stats: dict[str, dict[Key, CellStats]]
    layout: Layout
    grids: dict[str, ProtectedTable]
    insurers: int


class _Aggregates:
    """The regulator marts' cells per period and cut, each read once: a pack protects the year's
    earlier quarters too, so the same periods are asked for again."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._cells: dict[tuple[str, str, str | None], dict[Key, CellStats]] = {}
        self._insurers: dict[str, int] = {}

    def cells(self, period: Period, row: str, column: str | None) -> dict[Key, CellStats]:
        key = (period.id, row, column)
        if key not in self._cells:
            self._cells[key] = aggregate(self.con, period, row, column)
        return self._cells[key]

    def insurers(self, period: Period) -> int:
        if period.id not in self._insurers:
            self._insurers[period.id] = contributing_insurers(self.con, period)
        return self._insurers[period.id]


def _statistics(aggregates: _Aggregates, year: int, q: int) -> tuple[dict[str, dict[Key, CellStats]], int]:
    """Every table's cells for quarter q of the year and the year to date."""
    periods = {"quarter": quarter_period(year, q), "ytd": ytd_period(year, q)}
    stats: dict[str, dict[Key, CellStats]] = {}
    for period_name, period in periods.items():
        for spec in TABLE_SPECS:
            if period_name in spec.periods and spec.name != "sector_quarter":
                stats[f"{spec.name}_{period_name}"] = aggregates.cells(
                    period, spec.row_dim.code, spec.column_dim.code if spec.column_dim else None)
    # Sector totals of each quarter of the year so far are the columns of the sector × quarter table.
    stats["sector_quarter_ytd"] = {
        **{(r, quarter_period(year, j).label): cell for j in range(1, q + 1)
           for (r, _), cell in aggregates.cells(quarter_period(year, j), "sector", None).items()},
        **{(r, TOTAL_CODE): cell for (r, _), cell in aggregates.cells(periods["ytd"], "sector", None).items()},
    }
    return stats, aggregates.insurers(periods["ytd"])


def _protected(aggregates: _Aggregates, names: dict, year: int, q: int, config: PackConfig) -> Protected:
    """The protected grids of the pack for quarter q. The packs of the year's earlier quarters are
    protected first (recomputed from the same data): what they hid stays hidden, and the earlier
    quarters they published are not used to hide anything now."""
    earlier = _protected(aggregates, names, year, q - 1, config) if q > 1 else None
    stats, insurers = _statistics(aggregates, year, q)
    quarter_labels = [quarter_period(year, j).label for j in range(1, q + 1)]
    layout = _layout(names, stats, quarter_labels)
    grids = _grids(stats, layout)
    carried: list[tuple[str, tuple]] = []
    if earlier is not None:
        carried = _carried(earlier, grids, quarter_labels[-2])
        for group in GROUPS:
            over_time = grids[_grid_name("sector_quarter_ytd", group)]
            over_time.published_before |= {
                key for key in over_time.cells if key[1] in quarter_labels[:-1]} - {key for _, key in carried}
    disclosure.protect_all(grids, config.rules, _links(grids, layout, q, set(carried)), carried)
    return Protected(stats, layout, grids, insurers)


def _carried(earlier: Protected, grids: dict[str, ProtectedTable], previous_quarter: str) -> list[tuple[str, tuple]]:
    """Entries of this pack that an earlier pack's suppressions force hidden.

    Per cell, this quarter = this year to date − last year to date. When last year to date was
    hidden, one more hidden figure of the three is enough: this quarter's (the year to date, with
    more data behind it, stays publishable) — unless this quarter's cell is empty. The earlier
    quarters' columns of sector × quarter repeat figures the earlier pack published or hid: hidden
    ones stay hidden."""
    carried = []
    for group in GROUPS:
        for spec in TABLE_SPECS:
            if spec.periods != ("quarter", "ytd") or group not in _groups_of(spec):
                continue
            this_quarter = grids[_grid_name(f"{spec.name}_quarter", group)]
            for key in earlier.grids[_grid_name(f"{spec.name}_ytd", group)].suppressed:
                # A quarter cell nobody contributes to is a known zero: hiding it would hide nothing,
                # so the year to date (then equal to last year to date) is hidden instead.
                empty = key in this_quarter.cells and not this_quarter.cells[key].by_insurer
                carried.append((_grid_name(f"{spec.name}_{'ytd' if empty else 'quarter'}", group), key))
        over_time = _grid_name("sector_quarter_ytd", group)
        carried += [(over_time, key) for key in earlier.grids[over_time].suppressed if key[1] != TOTAL]
        carried += [(over_time, (r, previous_quarter))
                    for r, c in earlier.grids[_grid_name("sector_product_quarter", group)].suppressed if c == TOTAL]
    return [(name, key) for name, key in carried if name in grids and key in grids[name].cells]


@dataclass(frozen=True)
class Layout:
    """Rows and columns each table lists."""

    rows: dict[str, list[str]]
    columns: dict[str, list[str] | None]


def _layout(names, stats, quarter_labels) -> Layout:
    rows: dict[str, list[str]] = {}
    columns: dict[str, list[str] | None] = {}
    for spec in TABLE_SPECS:
        keys = [k for p in spec.periods for k in stats[f"{spec.name}_{p}"]]
        present_rows = {r for r, _ in keys}
        present_columns = {c for _, c in keys}
        for p in spec.periods:
            key = f"{spec.name}_{p}"
            rows[key] = _universe(names, spec.row_dim.code, present_rows, quarter_labels)
            columns[key] = (_universe(names, spec.column_dim.code, present_columns, quarter_labels)
                            if spec.column_dim else None)
    return Layout(rows, columns)


def _grids(stats, layout: Layout) -> dict[str, ProtectedTable]:
    grids: dict[str, ProtectedTable] = {}
    for spec in TABLE_SPECS:
        for p in spec.periods:
            key = f"{spec.name}_{p}"
            for group in _groups_of(spec):
                grids[_grid_name(key, group)] = _grid(stats[key], layout.rows[key], layout.columns[key], group,
                                                      spec.measures)
    return grids


def _links(grids: dict[str, ProtectedTable], layout: Layout, quarter: int,
           carried: set[tuple[str, tuple]]) -> list[list[tuple[str, tuple]]]:
    links: list[list[tuple[str, tuple]]] = []
    for group in GROUPS:
        for p in ("quarter", "ytd"):
            links.append([(name, (TOTAL, TOTAL)) for name in grids if name.endswith(f"_{p}:{group}")
                          and not name.startswith("sector_quarter")])
            for sector in layout.rows[f"sector_product_{p}"]:
                links.append([(_grid_name(f"sector_product_{p}", group), (sector, TOTAL)),
                              (_grid_name(f"sector_incident_type_{p}", group), (sector, TOTAL))])
        over_time = _grid_name("sector_quarter_ytd", group)
        this_quarter = layout.columns["sector_quarter_ytd"][quarter - 1]
        for sector in [*layout.rows["sector_quarter_ytd"], TOTAL]:
            links.append([(over_time, (sector, this_quarter)), (_grid_name("sector_product_quarter", group), (sector, TOTAL))])
            links.append([(over_time, (sector, TOTAL)), (_grid_name("sector_product_ytd", group), (sector, TOTAL))])
        for spec in TABLE_SPECS:
            if spec.periods != ("quarter", "ytd") or group not in _groups_of(spec):
                continue
            a, b = _grid_name(f"{spec.name}_quarter", group), _grid_name(f"{spec.name}_ytd", group)
            # Hidden together, unless last year to date was hidden (then this quarter is, see _carried).
            links.extend([[(a, k), (b, k)] for k in grids[a].cells if k in grids[b].cells
                          and (a, k) not in carried and (b, k) not in carried])
    return links


def _hidden(grids: dict[str, ProtectedTable], table_key: str, measure: str, key: Key) -> bool:
    group = MEASURE_BY_CODE[measure].group
    groups = GROUPS if group == "both" else (group,)
    return any(_dkey(key) in grids[_grid_name(table_key, g)].suppressed
               for g in groups if _grid_name(table_key, g) in grids)


def _value(cell: CellStats | None, measure: str):
    kind = MEASURE_BY_CODE[measure]
    value = cell.values.get(measure) if cell else None
    if value is None and (kind.additive or kind.kind == "count"):  # nothing in the cell: a true zero
        return 0 if kind.kind == "count" else Decimal("0.00")
    return value


def _tables(stats, layout: Layout, grids, names, periods: dict[str, Period]) -> list[PackTable]:
    tables = []
    for spec in TABLE_SPECS:
        for p in spec.periods:
            key = f"{spec.name}_{p}"
            rows, columns = layout.rows[key], layout.columns[key]
            cells = []
            for r in [*rows, TOTAL_CODE]:
                for c in ([*columns, TOTAL_CODE] if columns is not None else [None]):
                    cell_key = (r, c if c is not None else TOTAL_CODE)
                    source = stats[key].get(cell_key)
                    values, flags = {}, {}
                    for m in spec.measures:
                        if _hidden(grids, key, m, cell_key):
                            values[m], flags[m] = None, SUPPRESSED
                        else:
                            values[m] = _value(source, m)
                            if values[m] is None:
                                flags[m] = NOT_AVAILABLE
                    row_zh, row_en = _label(names, spec.row_dim.code, r)
                    col_zh, col_en = _label(names, spec.column_dim.code, c) if c is not None else (None, None)
                    cells.append(Cell(r, row_zh, row_en, c, col_zh, col_en, values, flags))
            period = periods[p]
            tables.append(PackTable(
                name=spec.name, number=spec.number, period=p, period_label=period.label,
                period_start=period.start, period_end=period.end, title_zh=spec.title_zh, title_en=spec.title_en,
                row_dim=spec.row_dim, column_dim=spec.column_dim, measures=spec.measures, cells=cells))
    return tables


def _summary(grids: dict[str, ProtectedTable]) -> dict[str, int]:
    summary = {"cells": 0, "primary": 0, "carried": 0, "secondary": 0}
    for grid in grids.values():
        summary["cells"] += len(grid.cells)
        for reasons in grid.suppressed.values():
            if disclosure.CARRIED in reasons:
                summary["carried"] += 1
            else:
                summary["secondary" if reasons == [disclosure.SECONDARY] else "primary"] += 1
    return summary


def write_audit(audit: Audit, folder: Path) -> list[Path]:
    """Internal files: every cell of every grid with its contributors, shares and reasons, and each
    insurer's contribution. They name insurers: they stay with the bureau."""
    folder.mkdir(parents=True, exist_ok=True)
    cells_path, shares_path = folder / "suppression_audit.csv", folder / "contributions.csv"
    with cells_path.open("w", newline="", encoding="utf-8") as f_cells, \
            shares_path.open("w", newline="", encoding="utf-8") as f_shares:
        cells_out, shares_out = csvsafe.writer(f_cells), csvsafe.writer(f_shares)
        cells_out.writerow(["grid", "row", "column", "insurers", "insureds", "amount", "largest_share",
                            "suppressed", "reasons"])
        extra = sorted({name for g in audit.grids.values() for c in g.cells.values() for name in c.amounts})
        shares_out.writerow(["grid", "row", "column", "insurer_id", "amount", *extra])
        for name, grid in audit.grids.items():
            for (r, c), contribution in grid.cells.items():
                r_code, c_code = _pack_key((r, c))
                amount = contribution.amount
                largest = max(contribution.by_insurer.values(), default=0.0)
                cells_out.writerow([name, r_code, c_code, len(contribution.by_insurer), contribution.n_insureds,
                                    f"{amount:.2f}", f"{largest / amount:.4f}" if amount > 0 else "",
                                    (r, c) in grid.suppressed, ";".join(grid.suppressed.get((r, c), []))])
                for insurer, value in sorted(contribution.by_insurer.items()):
                    shares_out.writerow([name, r_code, c_code, insurer, f"{value:.2f}",
                                         *(f"{contribution.amounts.get(e, {}).get(insurer, 0.0):.2f}" for e in extra)])
    return [cells_path, shares_path]


def write_pack(pack: Pack, audit: Audit, regulator_dir: Path, internal_dir: Path) -> dict:
    """The regulator's folder data/regulator/<quarter>/ and the bureau's internal audit folder."""
    from cyberclaims.regulator.render import write_csvs, write_json, write_workbook
    from cyberclaims.regulator.report import write_report

    folder = regulator_dir / pack.quarter
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"cyber_insurance_pilot_statistics_{pack.quarter}"
    written = {
        "workbook": write_workbook(pack, folder / f"{stem}.xlsx"),
        "csv": write_csvs(pack, folder / "csv"),
        "json": write_json(pack, folder / f"{stem}.json"),
        **write_report(pack, folder),
        "internal": write_audit(audit, internal_dir / pack.quarter),
    }
    (internal_dir / pack.quarter / "pack_summary.json").write_text(json.dumps(
        {"quarter": pack.quarter, "suppression": pack.suppression_summary, "folder": str(folder)}, indent=1),
        encoding="utf-8")
    return written
