"""Write–audit–publish of the sector claims database.

A new version is built as a separate DuckDB file holding only the published marts (columns
tagged `meta: {publication: exclude}` in dbt are dropped), with a `publication_manifest`
table; publication checks run on that file; only if all pass is it checkpointed, kept under
versions/, and renamed over `sector_claims.duckdb` in one atomic step. A reader that has the
previous file open keeps reading it (the rename does not touch open files); a new connection
sees the new version. A crash or a failed check at any point leaves the published file as it was.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cyberclaims.ingestion.contract import LINEAGE_COLUMNS, RAW_TABLE, USCC_REGEX
from cyberclaims.publication import cells
from cyberclaims.quality.gate import ADMITTED
from cyberclaims.settings import limit_memory

PUBLISHED_NAME = "sector_claims.duckdb"
VERSION_PATTERN = re.compile(r"^v(\d{6})\.duckdb$")
LOCK_NAME = ".publish.lock"
log = logging.getLogger(__name__)
IDENTITY_COLUMNS = ("insurer_id", "insured_id", "insured_name", "policy_number", "claim_number", "incident_number")
# The checks that find an identity in published text; when one fails, the submissions carrying it are named.
CLEAR_IDENTIFIERS, INSURER_IDENTITY = "no_clear_identifiers", "no_insurer_identity"
# The carriers named in a failure message at most (the rest are counted).
MAX_CARRIERS_NAMED = 20


class PublicationCheckFailed(RuntimeError):
    def __init__(self, results: list[CheckResult], carriers: list[Carrier] | None = None):
        self.results = results
        # The admitted submissions whose raw rows carry what an identity check found (see find_carriers).
        self.carriers = carriers or []
        failed = [r for r in results if not r.passed]
        super().__init__(f"{self.what}: " + "; ".join(f"{r.name}: {r.detail}" for r in failed))

    what = "publication checks failed"


class PublicationHeld(PublicationCheckFailed):
    """Every check passed but the difference rule: the change since the published version comes from too
    few insurers to be published alone. Nothing is published and nothing is wrong; the change waits for the
    next cycle's (a version published with it would show one insurer's rows by difference)."""

    what = "publication held"


# The trust rules (DESIGN.md §2, README Privacy), measured on the candidate file by publication.trust.
NO_SIGNATURE, NO_EXACT = "no_insurer_signature", "no_exact_quasi_identifiers"
ROUNDED_AMOUNTS = "row_level_amounts_rounded"
AGGREGATE_CELLS = "aggregate_cells_protected"
ROW_LEVEL_MEASURED, K_ANONYMITY = "row_level_tables_measured", "k_anonymity"
ROW_ORDER, DIFFERENCE = "row_order_random", "difference_from_enough_insurers"


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass
class PublishedTable:
    name: str
    columns: list[str]
    excluded: list[str] = field(default_factory=list)
    # The mart it is copied from, when published under another name (meta `publish_as`).
    source: str = ""

    def __post_init__(self) -> None:
        self.source = self.source or self.name


@dataclass(frozen=True)
class PublicationSettings:
    keep_versions: int = 5
    # A table may shrink by at most this share, or grow by at most this factor, against the last version.
    max_row_drop: float = 0.05
    max_row_growth: float = 3.0


def published_tables_from_manifest(manifest_path: Path) -> list[PublishedTable]:
    """Every dbt mart, with the columns tagged `publication: exclude` left out. A mart tagged
    `publication: exclude` itself is internal (its published form is another mart); a mart with
    `publish_as: NAME` is published under that name (the internal mart of that name being excluded)."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    tables = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("schema") != "marts":
            continue
        meta = node["config"].get("meta") or {}
        if meta.get("publication") == "exclude":
            continue
        columns, excluded = [], []
        for name, column in node["columns"].items():
            (excluded if column.get("meta", {}).get("publication") == "exclude" else columns).append(name)
        tables.append(PublishedTable(meta.get("publish_as") or node["name"], columns, excluded, node["name"]))
    return sorted(tables, key=lambda t: t.name)


def existing_versions(published_dir: Path) -> list[int]:
    folder = published_dir / "versions"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := VERSION_PATTERN.match(p.name)))


def version_path(published_dir: Path, version: int) -> Path:
    return published_dir / "versions" / f"v{version:06d}.duckdb"


def _text_columns(con: duckdb.DuckDBPyConnection, table: str, catalog: str | None = None,
                  schema: str | None = None) -> dict[str, bool]:
    """Text column → whether it is a list (VARCHAR[]), of a table of the connection's own database or of an
    attached one."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "AND data_type IN ('VARCHAR', 'VARCHAR[]') AND table_catalog = coalesce(?, current_database()) "
        "AND table_schema = coalesce(?, table_schema) ORDER BY ordinal_position",
        [table, catalog, schema],
    ).fetchall()
    return {name: data_type == "VARCHAR[]" for name, data_type in rows}


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"


def _has_insurer(column: str, is_list: bool, insurers: str) -> str:
    """SQL: the column is an insurer id, or (a list) holds one."""
    return f'list_has_any("{column}", [{insurers}])' if is_list else f'CAST("{column}" AS VARCHAR) IN ({insurers})'


def run_checks(
    con: duckdb.DuckDBPyConnection,
    tables: list[PublishedTable],
    insurer_ids: list[str],
    previous: Path | None,
    settings: PublicationSettings,
) -> list[CheckResult]:
    results = []
    leaking = [f"{t.name}.{c}" for t in tables for c in t.columns if c in IDENTITY_COLUMNS]
    results.append(CheckResult("no_identity_columns", not leaking, ", ".join(leaking) or "none"))

    uscc_hits, insurer_hits = [], []
    insurers = _quoted(insurer_ids)
    for t in tables:
        columns = _text_columns(con, t.name)
        if not columns:
            continue
        # One scan per table: every text column tested for codes and insurer names at once (a list column for an
        # insurer id among its items).
        counts = con.execute("SELECT " + ", ".join(
            f'count_if(regexp_matches(CAST("{c}" AS VARCHAR), $uscc)), count_if({_has_insurer(c, is_list, insurers)})'
            for c, is_list in columns.items()
        ) + f' FROM "{t.name}"', {"uscc": USCC_REGEX}).fetchall()[0]
        for column, n, m in zip(columns, counts[0::2], counts[1::2], strict=True):
            if n:
                uscc_hits.append(f"{t.name}.{column} ({n} rows)")
            if m:
                insurer_hits.append(f"{t.name}.{column} ({m} rows)")
    results.append(CheckResult(CLEAR_IDENTIFIERS, not uscc_hits, ", ".join(uscc_hits) or "none"))
    results.append(CheckResult(INSURER_IDENTITY, not insurer_hits, ", ".join(insurer_hits) or "none"))

    counts = {t.name: con.execute(f'SELECT count(*) FROM "{t.name}"').fetchall()[0][0] for t in tables}
    if previous is None:
        results.append(CheckResult("row_counts_consistent", True, "first version: " + json.dumps(counts)))
    else:
        with duckdb.connect(str(previous), read_only=True) as prev:
            before = {
                name: prev.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
                for (name,) in prev.execute("SELECT table_name FROM information_schema.tables").fetchall()
                if name in counts
            }
        bad = [
            f"{name}: {before[name]} → {n}"
            for name, n in counts.items()
            if name in before and before[name] > 0
            and (n < before[name] * (1 - settings.max_row_drop) or n > before[name] * settings.max_row_growth)
        ]
        results.append(CheckResult("row_counts_consistent", not bad, ", ".join(bad) or json.dumps(counts)))
    return results


def trust_checks(candidate: Path, warehouse: Path, tables: list[PublishedTable], previous: Path | None,
                 withdrawn: list[str]) -> tuple[list[CheckResult], dict]:
    """The trust rules on a candidate version (closed file) and the warehouse it was built from: the checks
    and the figures the manifest records. `withdrawn`: submissions of the previous version revoked since
    (their removal is published at once: keeping revoked rows published is the greater harm)."""
    from cyberclaims.publication import trust

    measured = trust.measure(candidate, warehouse)
    row_level = [r for r in measured if " ⋈ " not in r.table]
    checks = []

    carrying = [r for r in row_level if r.signature_rows]
    checks.append(CheckResult(NO_SIGNATURE, not carrying, "; ".join(
        f"{r.table}: {r.signature_rows:,} of {r.rows:,} rows ({r.signature_share:.1%}) carry one: " + ", ".join(
            f"{' × '.join(g.columns)} = {g.value} ({g.rows} rows, {g.top_share:.0%} one insurer)"
            for g in sorted(r.signatures, key=lambda g: -g.rows)[:5])
        for r in carrying) or (f"no value carried by >= {trust.SIGNATURE_MIN_ROWS} rows comes >= "
                               f"{trust.SIGNATURE_DOMINANCE:.0%} from one insurer in " + ", ".join(r.table for r in row_level))))

    exact = [f"{t.name}.{c}" for t in tables for c in t.columns if c in trust.EXACT_FORBIDDEN]
    checks.append(CheckResult(NO_EXACT, not exact, ", ".join(exact) or "none of " + ", ".join(trust.EXACT_FORBIDDEN)))

    specs = {spec.name for spec in trust.ROW_LEVEL}
    unrounded = trust.unrounded_amounts(candidate, {t.name: list(t.columns) for t in tables if t.name in specs})
    checks.append(CheckResult(ROUNDED_AMOUNTS, not unrounded, (
        ", ".join(f"{column}: {n:,} rows" for column, n in unrounded.items()) +
        f" with more than {trust.AMOUNT_SIGNIFICANT_FIGURES} significant figures (the fen of a converted amount "
        "tell its currency; round with the dbt macro significant_round)") if unrounded else
        f"every row-level amount at {trust.AMOUNT_SIGNIFICANT_FIGURES} significant figures or fewer"))

    with duckdb.connect(str(candidate), read_only=True) as con:
        exposed = cells.violations(con)
    checks.append(CheckResult(AGGREGATE_CELLS, not exposed, "; ".join(f"{what}: {n:,}" for what, n in exposed.items())
                              if exposed else "every published aggregate cell meets the rule (>= "
                              f"{trust.K_INSUREDS} insureds, >= {trust.K_INSURERS} insurers, none above "
                              f"{trust.DOMINANCE_SHARE:.0%}) or is hidden, and no line gives a hidden one back"))

    unmeasured = [t.name for t in tables
                  if t.name.startswith("fct_") and t.name not in specs and t.name not in trust.AGGREGATE_FACTS]
    checks.append(CheckResult(ROW_LEVEL_MEASURED, not unmeasured, (
        ", ".join(unmeasured) + ": row-level table(s) without a trust spec (publication.trust.ROW_LEVEL), "
        "so nobody measured whom their rows single out") if unmeasured else "every fct_* table is measured or "
        "an aggregate (" + ", ".join(trust.AGGREGATE_FACTS) + ")"))

    thin = [r for r in measured if r.quasi_identifiers and (r.rows_below_k_insureds or r.rows_below_k_insurers)]
    checks.append(CheckResult(K_ANONYMITY, not thin, "; ".join(
        f"{r.table}: {r.rows_below_k_insureds:,} rows below {trust.K_INSUREDS} insureds, {r.rows_below_k_insurers:,} "
        f"below {trust.K_INSURERS} insurers (k = {r.k_insureds} / {r.k_insurers} over {r.combinations:,} "
        f"combinations of {', '.join(r.quasi_identifiers)})" for r in thin) or "; ".join(
        f"{r.table}: k = {r.k_insureds} insureds / {r.k_insurers} insurers over {r.combinations:,} combinations"
        for r in measured if r.quasi_identifiers)))

    ordered = [r for r in row_level if r.same_insurer_as_previous is not None
               and r.same_insurer_as_previous > r.same_insurer_by_chance + trust.order_margin(r)]
    checks.append(CheckResult(ROW_ORDER, not ordered, "; ".join(
        f"{r.table}: P(same insurer as the previous row) {r.same_insurer_as_previous:.3f} against "
        f"{r.same_insurer_by_chance:.3f} by chance (margin {trust.order_margin(r):.3f})" for r in ordered) or
        f"every table within {trust.ORDER_MARGIN} of chance, or within 3 standard errors on a small table"))

    diffs = trust.differences(previous, candidate, warehouse) if previous is not None else []
    moved = [d for d in diffs if d.attributed]
    failing = [d for d in moved if d.insurers < trust.K_INSURERS or (d.top_insurer_share or 0) > trust.DOMINANCE_SHARE]
    if previous is None:
        checks.append(CheckResult(DIFFERENCE, True, "first version: no previous version to difference against"))
    elif failing and withdrawn:
        checks.append(CheckResult(DIFFERENCE, True, f"withdrawal of {', '.join(withdrawn)} published at once (the "
                                  "change may be told apart by difference: " + _differences(failing) + ")"))
    else:
        checks.append(CheckResult(DIFFERENCE, not failing, (
            f"{_differences(failing)} since {previous.stem}: a version that few insurers' submissions alone change "
            f"shows their rows to anyone who kept the previous one; the change waits until it comes from >= "
            f"{trust.K_INSURERS} insurers, none above {trust.DOMINANCE_SHARE:.0%} of the changed rows")
            if failing else (_differences(moved) or "no row added or changed") + f" since {previous.stem}"))

    figures = {
        "thresholds": {"k_insureds": trust.K_INSUREDS, "k_insurers": trust.K_INSURERS,
                       "signature_min_rows": trust.SIGNATURE_MIN_ROWS, "signature_dominance": trust.SIGNATURE_DOMINANCE,
                       "dominance_share": trust.DOMINANCE_SHARE, "order_margin": trust.ORDER_MARGIN},
        "tables": {r.table: {
            "rows": r.rows, "signature_rows": r.signature_rows, "signature_share": round(r.signature_share, 4),
            "quasi_identifiers": list(r.quasi_identifiers), "combinations": r.combinations,
            "k_insureds": r.k_insureds, "k_insurers": r.k_insurers,
            "rows_below_k_insureds": r.rows_below_k_insureds, "rows_below_k_insurers": r.rows_below_k_insurers,
            "same_insurer_as_previous": r.same_insurer_as_previous, "same_insurer_by_chance": r.same_insurer_by_chance,
        } for r in measured},
        "differences": [d.__dict__ for d in diffs],
        # Published rows whose exact amount a one-contributor aggregate cell repeats (publication.trust
        # .aggregate_linkage): 0 once the cells are protected and the row-level amounts rounded.
        "aggregate_linkage": trust.aggregate_linkage(candidate),
    }
    return checks, figures


def _differences(diffs: list) -> str:
    return "; ".join(f"{d.table}: {d.attributed:,} rows added or changed from {d.insurers} insurer(s), the largest "
                     f"{d.top_insurer_share:.0%}" for d in diffs)


def generalised_rows(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, dict[str, int]]:
    """Per published table with a disclosure level: rows per level (0 the finest); with is_disclosed: rows
    whose counts and amounts are suppressed."""
    figures = {}
    for t in tables:
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [t]).fetchall()}
        if "disclosure_level" in columns:
            figures[t] = {str(level): n for level, n in con.execute(
                f'SELECT disclosure_level, count(*) FROM "{t}" GROUP BY ALL ORDER BY 1').fetchall()}
        elif "is_disclosed" in columns:
            figures[t] = {"suppressed": con.execute(f'SELECT count(*) FILTER (WHERE NOT is_disclosed) FROM "{t}"'
                                                    ).fetchall()[0][0]}
    return figures


@dataclass(frozen=True)
class Carrier:
    """An admitted submission whose stored rows carry an identity the publication audit found."""

    submission_id: str
    insurer_id: str
    source_file: str
    rows: int
    checks: tuple[str, ...]  # which identity checks its rows fail

    @property
    def revoke(self) -> str:
        return (f'cyberclaims submissions revoke {self.submission_id[:16]} --note "identity in published text '
                f'({", ".join(self.checks)})"')


def published_identities(con: duckdb.DuckDBPyConnection, tables: list[PublishedTable],
                         insurer_ids: list[str]) -> tuple[list[str], list[str]]:
    """(USCC-shaped tokens, insurer ids) that the text of the published tables carries."""
    tokens: set[str] = set()
    found: set[str] = set()
    insurers = _quoted(insurer_ids)
    for t in tables:
        for column, is_list in _text_columns(con, t.name).items():
            text = f'CAST("{column}" AS VARCHAR)'
            tokens.update(r[0] for r in con.execute(
                f'SELECT DISTINCT unnest(regexp_extract_all({text}, $uscc, 2)) FROM "{t.name}" '
                f"WHERE regexp_matches({text}, $uscc)", {"uscc": USCC_REGEX}).fetchall())
            items = f'unnest(list_intersect("{column}", [{insurers}]))' if is_list else text
            found.update(r[0] for r in con.execute(
                f'SELECT DISTINCT {items} FROM "{t.name}" WHERE {_has_insurer(column, is_list, insurers)}').fetchall())
    return sorted(tokens - {""}), sorted(found)


def find_carriers(con: duckdb.DuckDBPyConnection, catalog: str, tokens: list[str], insurer_ids: list[str]) -> list[Carrier]:
    """The admitted submissions whose raw rows (in the warehouse attached as `catalog`) hold one of the USCC-shaped
    tokens, or one of the insurer ids, in a stored text column (lineage columns aside). Published tables carry no
    submission id: the values are looked up where every row still has its submission."""
    counts: dict[str, dict[str, int]] = {}  # submission id → check → rows
    insurers = _quoted(insurer_ids)
    lineage = {name for name, _ in LINEAGE_COLUMNS}
    for table in RAW_TABLE.values():
        columns = {c: is_list for c, is_list in _text_columns(con, table, catalog, "raw").items() if c not in lineage}
        tests = []
        if tokens and columns:
            tests.append((CLEAR_IDENTIFIERS, " OR ".join(
                f'list_has_any(regexp_extract_all(CAST("{c}" AS VARCHAR), $uscc, 2), $tokens)' for c in columns)))
        if insurer_ids and columns:
            tests.append((INSURER_IDENTITY, " OR ".join(_has_insurer(c, is_list, insurers) for c, is_list in columns.items())))
        for check, condition in tests:
            params = {"uscc": USCC_REGEX, "tokens": tokens} if check == CLEAR_IDENTIFIERS else {}
            for submission_id, n in con.execute(
                f'SELECT submission_id, count(*) FROM "{catalog}".raw."{table}" WHERE {condition} GROUP BY ALL', params
            ).fetchall():
                by_check = counts.setdefault(submission_id, {})
                by_check[check] = by_check.get(check, 0) + n
    if not counts:
        return []
    rows = con.execute(
        f'SELECT s.submission_id, s.insurer_id, s.source_file FROM "{catalog}".control.submissions s '
        f'JOIN "{catalog}".control.submission_gate g USING (submission_id) '
        "WHERE s.submission_id IN (SELECT unnest($ids)) AND g.status IN (SELECT unnest($admitted)) "
        "ORDER BY s.insurer_id, s.ingested_at, s.submission_id",
        {"ids": sorted(counts), "admitted": list(ADMITTED)},
    ).fetchall()
    return [Carrier(sid, insurer, source_file, sum(counts[sid].values()), tuple(sorted(counts[sid])))
            for sid, insurer, source_file in rows]


def _name_carriers(checks: list[CheckResult], carriers: list[Carrier]) -> list[CheckResult]:
    """The failed identity checks, each with the submissions to revoke (or why there is none) in its detail."""
    named = []
    for check in checks:
        if check.passed or check.name not in (CLEAR_IDENTIFIERS, INSURER_IDENTITY):
            named.append(check)
            continue
        own = [c for c in carriers if check.name in c.checks]
        if own:
            listed = "; ".join(f"submission {c.submission_id[:16]} of {c.insurer_id} ({c.source_file}, {c.rows} rows): "
                               f"`{c.revoke}`" for c in own[:MAX_CARRIERS_NAMED])
            more = f"; and {len(own) - MAX_CARRIERS_NAMED} more submission(s)" if len(own) > MAX_CARRIERS_NAMED else ""
            detail = (f"{check.detail} — carried by the rows of {len(own)} admitted submission(s); revoke each, then "
                      f"`cyberclaims run` publishes without them: {listed}{more}")
        else:
            detail = (f"{check.detail} — no admitted submission's raw rows carry it: it comes from the dbt project (a "
                      "seed or a model) or from warehouse rows changed after ingestion")
        named.append(CheckResult(check.name, check.passed, detail))
    return named


def publication_metadata(con: duckdb.DuckDBPyConnection, dbt_project_dir: Path) -> dict:
    """What a version is made of: submissions, code and taxonomy versions, the audit that preceded it."""
    from cyberclaims import __version__
    from cyberclaims.ingestion.contract import CONTRACT_VERSION
    from cyberclaims.ingestion.taxonomy import SEEDS_DIR, read_seed
    from cyberclaims.transformation.builds import built_from

    # Admitted submissions only: a held or operator-rejected submission is not in the marts.
    submissions = [r[0] for r in con.execute(
        "SELECT s.submission_id FROM control.submissions s JOIN control.submission_gate g USING (submission_id) "
        "WHERE s.status = 'loaded' AND g.status IN (SELECT unnest(?)) ORDER BY s.ingested_at, s.submission_id",
        [list(ADMITTED)],
    ).fetchall()]
    taxonomy_versions = {
        p.stem: sorted({row.get("taxonomy_version", "") for row in read_seed(p.stem)})
        for p in sorted(SEEDS_DIR.glob("*.csv"))
    }
    run_results = dbt_project_dir / "target" / "run_results.json"
    dbt_statuses: dict[str, int] = {}
    if run_results.exists():
        for result in json.loads(run_results.read_text(encoding="utf-8"))["results"]:
            dbt_statuses[result["status"]] = dbt_statuses.get(result["status"], 0) + 1
    commit = _git_commit()
    return {
        "submissions_included": submissions,
        "inputs_fingerprint": built_from(con),
        "code_version": f"cyberclaims {__version__}" + (f" ({commit})" if commit else ""),
        "contract_version": CONTRACT_VERSION,
        "taxonomy_versions": taxonomy_versions,
        "dbt_build_results": dbt_statuses,
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass
class PublishResult:
    version: int
    path: Path
    checks: list[CheckResult]
    tables: dict[str, int]
    # False: the published version was already built from the same inputs, nothing was published.
    published: bool = True


@contextmanager
def _publish_lock(published_dir: Path) -> Iterator[None]:
    """One publisher at a time on a published dir, across processes (flock: a killed holder releases it)."""
    fd = os.open(published_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exports_dir(published_dir: Path, version: int) -> Path:
    return published_dir / "exports" / f"v{version:06d}"


def _export_parquet(database: Path, target: Path, tables: list[str]) -> None:
    """Every published table as Parquet, written aside and renamed into place whole."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with duckdb.connect(str(database), read_only=True) as con:
        limit_memory(con)
        for name in tables:
            con.execute(f"COPY \"{name}\" TO '{partial / (name + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def _point_exports_at(published_dir: Path, version: int) -> None:
    """published/parquet and published/catalog are symlinks into the current version's exports,
    each switched atomically."""
    for name, inside in (("parquet", "parquet"), ("catalog", "catalog")):
        target = Path("exports") / f"v{version:06d}" / inside
        if not (published_dir / target).is_dir():
            continue
        staged = published_dir / f".{name}.incoming"
        staged.unlink(missing_ok=True)
        os.symlink(target, staged)
        os.replace(staged, published_dir / name)


def _swap_in(source: Path, published_dir: Path) -> None:
    """Link (or copy) aside, then rename over the published name: readers see the old file or the new.

    Version files are never opened for writing, so the published name may share their inode.
    """
    staged = published_dir / f".{PUBLISHED_NAME}.incoming"
    staged.unlink(missing_ok=True)
    try:
        os.link(source, staged)
    except OSError:
        shutil.copyfile(source, staged)
        _fsync(staged)
    os.replace(staged, published_dir / PUBLISHED_NAME)
    _fsync(published_dir)


def publish(
    warehouse_path: Path,
    published_dir: Path,
    tables: list[PublishedTable],
    manifest_extra: dict,
    settings: PublicationSettings = PublicationSettings(),
    catalog_builder: Callable[[Path], None] | None = None,
    force: bool = False,
) -> PublishResult:
    """Build, audit and swap in the next version. Raises PublicationCheckFailed (nothing published).

    Under the publication lock, a version is published only if the current one was not built from the same
    inputs (manifest_extra's inputs_fingerprint): two runs that built the same marts publish one version
    (the second returns the current one with published=False). force publishes anyway (`run --rebuild`)."""
    published_dir.mkdir(parents=True, exist_ok=True)
    with _publish_lock(published_dir):
        fingerprint = manifest_extra.get("inputs_fingerprint")
        current = published_manifest(published_dir) if fingerprint and not force else {}
        if current.get("inputs_fingerprint") == fingerprint and current.get("version"):
            log.info(f"nothing new to publish: version {current['version']} was built from the same inputs "
                     f"({fingerprint[:12]})")
            return PublishResult(current["version"], published_dir / PUBLISHED_NAME,
                                 [CheckResult(**c) for c in current.get("checks", [])], current.get("tables", {}),
                                 published=False)
        return _publish(warehouse_path, published_dir, tables, manifest_extra, settings, catalog_builder)


def _publish(
    warehouse_path: Path,
    published_dir: Path,
    tables: list[PublishedTable],
    manifest_extra: dict,
    settings: PublicationSettings,
    catalog_builder: Callable[[Path], None] | None,
) -> PublishResult:
    (published_dir / "versions").mkdir(exist_ok=True)
    building_dir = published_dir / ".building"
    # Whatever a killed run left half-built is discarded, never published.
    shutil.rmtree(building_dir, ignore_errors=True)
    building_dir.mkdir()
    versions = existing_versions(published_dir)
    version = (versions[-1] + 1) if versions else 1
    building = building_dir / f"v{version:06d}.duckdb"

    with duckdb.connect(str(building)) as con:
        limit_memory(con)
        con.execute(f"ATTACH '{warehouse_path}' AS wh (READ_ONLY)")
        insurer_ids = [r[0] for r in con.execute("SELECT DISTINCT insurer_id FROM wh.control.submissions").fetchall()]
        for t in tables:
            cols = ", ".join(f'"{c}"' for c in t.columns)
            # Rows in the order of a hash of their published values, never the build's (which follows the
            # insurers' submissions and would tell whose rows sit together): see publication.trust.row_order.
            con.execute(f'CREATE TABLE "{t.name}" AS SELECT {cols} FROM wh.marts."{t.source}" ORDER BY hash({cols})')
        # Rows a published form withholds (pub_fct_claim_valuations: months too few insurers delivered).
        withheld = {t.name: con.execute(f'SELECT (SELECT count(*) FROM wh.marts."{t.name}") - count(*) FROM "{t.name}"'
                                        ).fetchall()[0][0]
                    for t in tables if t.source != t.name and con.execute(
                        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wh' "
                        "AND table_schema = 'marts' AND table_name = ?", [t.name]).fetchall()[0][0]}
        previous = version_path(published_dir, versions[-1]) if versions else None
        withdrawn = _withdrawn_since(con, previous)
        con.execute("DETACH wh")
        # The aggregates' cells that fail the rule, and those that would give them back, are hidden.
        aggregate_cells = cells.protect(con)
        checks = run_checks(con, tables, insurer_ids, previous, settings)
        carriers: list[Carrier] = []
        if not all(c.passed for c in checks if c.name in (CLEAR_IDENTIFIERS, INSURER_IDENTITY)):
            # The published tables carry no submission id: the offending values are looked up in the warehouse.
            tokens, found = published_identities(con, tables, insurer_ids)
            con.execute(f"ATTACH '{warehouse_path}' AS wh (READ_ONLY)")
            carriers = find_carriers(con, "wh", tokens, found)
            con.execute("DETACH wh")
            checks = _name_carriers(checks, carriers)
        counts = {t.name: con.execute(f'SELECT count(*) FROM "{t.name}"').fetchall()[0][0] for t in tables}
        generalised = generalised_rows(con, list(counts))
        con.execute("CHECKPOINT")
    # The trust rules read the closed candidate beside the warehouse (publication.trust).
    trust, figures = trust_checks(building, warehouse_path, tables, previous, withdrawn)
    checks = [*checks, *trust]
    with duckdb.connect(str(building)) as con:
        manifest = {
            "version": version,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "checks": [c.__dict__ for c in checks],
            "tables": counts,
            "trust": figures | {"generalised_rows": generalised, "withheld_rows": withheld,
                                "aggregate_cells": aggregate_cells},
            **manifest_extra,
        }
        con.execute("CREATE TABLE publication_manifest (key VARCHAR, value JSON)")
        con.executemany(
            "INSERT INTO publication_manifest VALUES (?, ?)", [(k, json.dumps(v, default=str)) for k, v in manifest.items()]
        )
        con.execute("CHECKPOINT")
    failed = [c for c in checks if not c.passed]
    if failed:
        shutil.rmtree(building_dir, ignore_errors=True)
        if all(c.name == DIFFERENCE for c in failed):
            raise PublicationHeld(checks)
        raise PublicationCheckFailed(checks, carriers)

    _fsync(building)
    final = version_path(published_dir, version)
    os.replace(building, final)
    exports = exports_dir(published_dir, version)
    _export_parquet(final, exports / "parquet", [*counts, "publication_manifest"])
    if catalog_builder is not None:
        catalog_builder(exports / "catalog")
    _swap_in(final, published_dir)
    _point_exports_at(published_dir, version)
    shutil.rmtree(building_dir, ignore_errors=True)
    for old in existing_versions(published_dir)[: -settings.keep_versions]:
        version_path(published_dir, old).unlink()
        shutil.rmtree(exports_dir(published_dir, old), ignore_errors=True)
    return PublishResult(version, published_dir / PUBLISHED_NAME, checks, counts)


def _withdrawn_since(con: duckdb.DuckDBPyConnection, previous: Path | None) -> list[str]:
    """Submissions of the previous version that an operator has revoked since (warehouse attached as wh)."""
    if previous is None:
        return []
    with duckdb.connect(str(previous), read_only=True) as prev:
        row = prev.execute("SELECT value FROM publication_manifest WHERE key = 'submissions_included'").fetchall()
    included = json.loads(row[0][0]) if row else []
    if not included:
        return []
    # A revoked submission's gate status is `rejected`; its log says `revoked` (quality.review.review).
    return [r[0] for r in con.execute(
        "SELECT submission_id FROM wh.control.submission_gate WHERE status = 'rejected' AND submission_id IN "
        "(SELECT unnest($ids)) AND submission_id IN (SELECT submission_id FROM wh.control.submission_gate_log "
        "WHERE status = 'revoked') ORDER BY 1", {"ids": included}).fetchall()]


def rollback(published_dir: Path, version: int) -> Path:
    """Make an earlier kept version the published one again, atomically."""
    source = version_path(published_dir, version)
    if not source.exists():
        kept = ", ".join(str(v) for v in existing_versions(published_dir)) or "none"
        raise FileNotFoundError(f"version {version} is not kept (kept: {kept})")
    with _publish_lock(published_dir):
        _swap_in(source, published_dir)
        _point_exports_at(published_dir, version)
    return published_dir / PUBLISHED_NAME


def published_manifest(published_dir: Path) -> dict:
    """The publication manifest of the currently published version ({} when nothing is published)."""
    path = published_dir / PUBLISHED_NAME
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM publication_manifest").fetchall()}


def published_submissions(published_dir: Path) -> dict[str, int]:
    """submission id → version, for the submissions in the currently published version."""
    manifest = published_manifest(published_dir)
    return {s: manifest["version"] for s in manifest.get("submissions_included", [])}


def published_version(published_dir: Path) -> int | None:
    return published_manifest(published_dir).get("version")
