"""Sector-level holds: when a blocking dbt test of the sector build fails on rows of newly admitted
submissions, blame it on exactly those (`attribute_sector_failures`) and hold them (`hold_for_sector_tests`,
reason SECTOR_TEST:<test>, actor `sector_tests`), so the build runs again without them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from cyberclaims.quality.gate import ADMITTED, SAMPLES_PER_FINDING, SECTOR_ACTOR, SECTOR_TEST, GateError, now
from cyberclaims.quality.profiles import jsonable


@dataclass(frozen=True)
class SectorTestFailure:
    """A node of a failed dbt build: a blocking test that failed (with the SQL of its failing rows), or
    any other node that errored."""

    name: str
    resource_type: str  # test | model | seed | unit_test | …
    status: str  # fail | error
    message: str
    failures: int | None = None
    compiled_code: str | None = None


@dataclass
class SectorVerdict:
    """What a failed build can be blamed on: per submission, the tests its rows fail; and the failures
    that name no holdable submission (each with why). Submissions are held only when there are none
    of the latter."""

    holds: dict[str, list[dict]] = field(default_factory=dict)
    unattributable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def attributable(self) -> bool:
        return bool(self.holds) and not self.unattributable


LINEAGE = ("insurer_id", "submission_id")


def released_after_sector_hold(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Submissions an operator released after a sector-test hold: the sector tests never hold them again."""
    return {r[0] for r in con.execute(
        "SELECT submission_id FROM control.submission_gate WHERE status = 'released' AND submission_id IN "
        "(SELECT submission_id FROM control.submission_gate_log WHERE actor = ? AND status = 'held')", [SECTOR_ACTOR]
    ).fetchall()}


def attribute_sector_failures(
    con: duckdb.DuckDBPyConnection, failures: list[SectorTestFailure], published: set[str]
) -> SectorVerdict:
    """Blame each failing test on the submissions of its failing rows (read-only: the test's own SQL,
    run again on the warehouse the build left). A failure is attributable when its rows carry
    insurer_id and submission_id and every row names an admitted submission that is not in the
    published version and was not released by an operator after an earlier sector-test hold.

    A test that fails on rows of most insurers at once is not one delivery's problem (a model, a macro
    or a seed is wrong): holding them all would publish an empty sector, so it is not attributed."""
    verdict = SectorVerdict()
    admitted = dict(con.execute(
        "SELECT submission_id, insurer_id FROM control.submission_gate WHERE status IN (SELECT unnest(?))", [list(ADMITTED)]
    ).fetchall())
    most_insurers = max(1, len(set(admitted.values())) // 2)
    released = released_after_sector_hold(con)
    for failure in failures:
        why = _unattributable(con, failure)
        if why:
            verdict.unattributable.append((failure.name, why))
            continue
        sql = failure.compiled_code
        rows = con.execute(f"SELECT submission_id, count(*) FROM (\n{sql}\n) AS failing GROUP BY ALL ORDER BY ALL").fetchall()
        sids = {sid for sid, _ in rows}
        problems = [
            (not rows, "its failing rows are gone when read again"),
            (None in sids, "failing rows without a submission_id"),
            (bool(sids & published), "rows of published submission(s) " + _short(sids & published)),
            (bool(sids & released), "rows of submission(s) released by an operator after a sector-test hold "
             + _short(sids & released)),
            (bool(sids - admitted.keys() - {None}),
             "rows of submission(s) no longer admitted " + _short(sids - admitted.keys() - {None})),
            (len({admitted[s] for s in sids if s in admitted}) > most_insurers,
             f"rows of {len({admitted[s] for s in sids if s in admitted})} insurers' submissions: not one delivery's problem"),
        ]
        blocking = [text for bad, text in problems if bad]
        if blocking:
            verdict.unattributable.append((failure.name, "; ".join(blocking)))
            continue
        for sid, n in rows:
            samples = con.execute(
                f"SELECT * EXCLUDE ({', '.join(LINEAGE)}) FROM (\n{sql}\n) AS failing WHERE submission_id = ? LIMIT ?",
                [sid, SAMPLES_PER_FINDING],
            )
            names = [d[0] for d in samples.description]
            verdict.holds.setdefault(sid, []).append({
                "test": failure.name,
                "failing_rows": n,
                "samples": [{k: jsonable(v) for k, v in zip(names, r, strict=True) if k != "source_file"}
                            for r in samples.fetchall()],
            })
    return verdict


def _unattributable(con: duckdb.DuckDBPyConnection, failure: SectorTestFailure) -> str | None:
    if failure.resource_type != "test" or failure.status != "fail":
        first_line = (failure.message or "").strip().splitlines()[:1]
        return f"{failure.resource_type} {failure.status}" + (f": {first_line[0]}" if first_line else "")
    if not failure.compiled_code:
        return "no compiled SQL in the build's results"
    try:
        columns = {d[0] for d in con.execute(f"SELECT * FROM (\n{failure.compiled_code}\n) AS failing LIMIT 0").description}
    except duckdb.Error as exc:
        return f"its SQL cannot be read again ({type(exc).__name__})"
    if not set(LINEAGE) <= columns:
        return "its failing rows carry no insurer_id and submission_id (a test on an aggregate or a seed)"
    return None


def _short(ids: set[str]) -> str:
    return ", ".join(sorted(i[:12] for i in ids if i))


def hold_for_sector_tests(con: duckdb.DuckDBPyConnection, holds: dict[str, list[dict]]) -> list[dict]:
    """Hold admitted submissions whose rows fail blocking sector-level tests (reasons SECTOR_TEST:<test>,
    the tests, failing row counts and sample keys in `results.sector_tests`), logged with actor
    `sector_tests`. One transaction. An operator releases, rejects or revokes them as any held one."""
    at = now()
    held = []
    con.execute("BEGIN TRANSACTION")
    try:
        for sid, findings in sorted(holds.items()):
            rows = con.execute(
                "SELECT g.status, g.results, g.insurer_id, s.source_file FROM control.submission_gate g "
                "JOIN control.submissions s USING (submission_id) WHERE submission_id = ?", [sid]
            ).fetchall()
            if not rows or rows[0][0] not in ADMITTED:
                raise GateError(f"{sid[:12]} is not admitted: the sector tests cannot hold it")
            _, results, insurer_id, source_file = rows[0]
            reasons = sorted({f"{SECTOR_TEST}:{f['test']}" for f in findings})
            note = "failed blocking sector test(s): " + ", ".join(
                f"{f['test']} ({f['failing_rows']} row{'s' if f['failing_rows'] != 1 else ''})" for f in findings)
            results = (json.loads(results) if results else {}) | {
                "sector_tests": [{**f, "held_at": at.isoformat(timespec="seconds")} for f in findings]}
            con.execute(
                """UPDATE control.submission_gate SET status = 'held', reasons = ?, results = ?, admitted_at = NULL,
                   decided_by = ?, decided_at = ?, decision_note = ? WHERE submission_id = ?""",
                [reasons, json.dumps(results, default=jsonable, ensure_ascii=False), SECTOR_ACTOR, at, note, sid],
            )
            con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, 'held', ?, ?, ?)",
                        [sid, at, reasons, SECTOR_ACTOR, note])
            held.append({"submission_id": sid, "insurer_id": insurer_id, "source_file": source_file,
                         "reasons": reasons, "note": note})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return held
