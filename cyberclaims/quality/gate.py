"""The submission-level gate: Great Expectations suites over each new submission, then admit or hold.

Every loaded submission enters `control.submission_gate` as `pending`. The gate evaluates an
insurer's pending submissions in delivery order:

1. the record suites (`expectations/suites/{policy,incident,claim_valuation}.json`) run on the
   submissions' accepted rows, in bounded batches of whole submissions; every failing row is
   attributed to its submission by (submission_id, source_row);
2. the `submission` suite runs on one profile row per submission and record type: quarantine
   share, share of policies known, drift against the insurer's previous *admitted* submission
   of that record type (row count, premium and paid totals, share of open claims) and the
   reconciliation with the manifest's control totals. Thresholds come from the insurer's
   config (`quality:`) as suite parameters.

A submission with any failing expectation is **held**; the others **pass** and are admitted.
Only admitted submissions (passed, or released by an operator) reach the dbt models, so a held
submission never delays another insurer's. Drift skips held submissions: the next month is
compared with the last admitted one, not with the outlier.

The record suites also judge each row against the claim's *admitted* history (paid never falls,
a claim is not valued before it was reported, across files) and the FX seed (a rate for every
amount's month), so what the sector-level dbt tests would refuse is held here, per submission.
A required field the insurer's config declares not delivered is not required of it.

Sector level: when a blocking dbt test of the build still fails on rows of newly admitted
submissions, the build holds exactly those (`quality.sector.hold_for_sector_tests`, reason SECTOR_TEST:<test>,
actor `sector_tests`) and rebuilds without them (`attribute_sector_failures` decides what can be
attributed). Operators release, reject or revoke (`quality.review.review`): a revocation takes an admitted
submission out of the marts and the next published version.

Layout: quality.suites runs the GX suites; quality.facts reads what the warehouse knows of the
submissions; quality.measures is the registry of submission-level measures and quality.profiles
computes them and settles the holds (pure); this module decides and records; quality.review holds
the operator's decisions and quality.sector the sector-level holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.taxonomy import load_taxonomy
from cyberclaims.quality.facts import batches, not_delivered_columns, read_facts, record_frame
from cyberclaims.quality.measures import MEASURES
from cyberclaims.quality.profiles import jsonable, settle
from cyberclaims.quality.suites import SuiteRunner, threshold

# The gate statuses whose rows reach the marts: the one definition in Python (dbt: macro is_admitted).
ADMITTED = ("passed", "released")
# A hold by a failing sector-level dbt test: SECTOR_TEST:<test name>.
SECTOR_TEST = "SECTOR_TEST"
SAMPLES_PER_FINDING = 5
RECORD_INDEX = ["submission_id", "source_row"]


# Why a submission is held (the `reason` in each expectation's meta in expectations/suites/); the
# submission-level reasons are those of the measures' registry (quality.measures).
GATE_REASONS = {
    "REQUIRED_FIELD": "an accepted row lacks a required field (the mapping is wrong)",
    "RANGE": "an accepted value is outside its allowed range",
    "DATE_ORDER": "accepted rows have dates out of order",
    "PREMIUM_ABOVE_LIMIT": "written premium exceeds the limit (often a 元/万元 unit mix-up)",
    "PAID_ABOVE_LIMIT": "paid indemnity exceeds the policy limit beyond the tolerance",
    **{m.reason: m.en for m in MEASURES},
    "PAID_DECREASES": "a cumulative paid amount is below the claim's previous admitted valuation, or above its "
                      "next later one (a late correction that would make paid fall)",
    "INCURRED_MISMATCH": "the delivered incurred differs from paid indemnity + paid expense + case reserve − "
                         "recoveries by more than the tolerance",
    "FX_RATE_MISSING": "an amount's currency has no FX rate for its month (valuation month; policies: inception month)",
    "VALUED_BEFORE_REPORTED": "across files, a claim is valued before it was reported: its report date is after "
                              "an admitted valuation, or its valuation before an admitted report date",
    SECTOR_TEST: "a blocking test of the sector build (dbt) fails on this submission's rows; the other submissions "
                 "were published without it",
}

# The Chinese texts of the reasons that have one (the feedback shows them next to the English).
GATE_REASONS_ZH = {m.reason: m.zh for m in MEASURES}

# Who holds a submission whose rows fail a sector-level dbt test (control.submission_gate.decided_by and the log).
SECTOR_ACTOR = "sector_tests"


def reason_description(reason: str) -> str:
    """What a gate reason code means (SECTOR_TEST:<test> by its prefix)."""
    return GATE_REASONS.get(reason.split(":", 1)[0], "")


def reason_description_zh(reason: str) -> str:
    """The Chinese text of a gate reason, where the registry of measures has one ("" otherwise)."""
    return GATE_REASONS_ZH.get(reason.split(":", 1)[0], "")


class GateError(RuntimeError):
    """The gate could not evaluate (a suite raised, the warehouse is inconsistent)."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Decision:
    submission_id: str
    source_file: str
    status: str  # passed | held
    reasons: list[str]
    results: dict = field(default_factory=dict)


def pending_submissions(con: duckdb.DuckDBPyConnection, insurer_id: str) -> list[tuple[str, str, datetime]]:
    return con.execute(
        """SELECT g.submission_id, s.source_file, s.ingested_at FROM control.submission_gate g
           JOIN control.submissions s USING (submission_id)
           WHERE g.insurer_id = ? AND g.status = 'pending' ORDER BY s.ingested_at, s.submission_id""",
        [insurer_id],
    ).fetchall()


def _record_findings(con, cfg: InsurerConfig, runner: SuiteRunner, submission_ids: list[str]) -> dict[str, list[dict]]:
    findings: dict[str, list[dict]] = {}
    parameters = {
        "currencies": sorted(load_taxonomy().codes["tax_currency"]),
        "incurred_tolerance": float(cfg.quality.incurred_tolerance),
    }
    for rt in cfg.record_types:
        sizes = con.execute(
            "SELECT submission_id, rows_loaded FROM control.submission_counts WHERE record_type = ? "
            "AND submission_id IN (SELECT unnest(?))",
            [rt, submission_ids],
        ).fetchall()
        position = {sid: i for i, sid in enumerate(submission_ids)}
        for batch in batches(sorted(sizes, key=lambda s: position[s[0]])):
            frame = record_frame(con, cfg, rt, batch, ADMITTED)
            for failure in runner.run(rt, frame, parameters, RECORD_INDEX, not_delivered_columns(cfg, rt)):
                by_submission: dict[str, list[dict]] = {}
                for row in failure["unexpected"]:
                    by_submission.setdefault(row["submission_id"], []).append(row)
                for sid, rows in by_submission.items():
                    findings.setdefault(sid, []).append({
                        "suite": f"{rt} {runner.versions[rt]}",
                        "record_type": rt,
                        "reason": failure["reason"],
                        "expectation": failure["expectation"],
                        "columns": failure["kwargs"],
                        "describe": failure["describe"],
                        "unexpected_rows": len(rows),
                        "samples": [
                            {k: jsonable(v) for k, v in r.items() if k != "submission_id"}
                            for r in sorted(rows, key=lambda r: r["source_row"])[:SAMPLES_PER_FINDING]
                        ],
                    })
    return findings


def evaluate_insurer(
    con: duckdb.DuckDBPyConnection, cfg: InsurerConfig, runner: SuiteRunner | None = None
) -> list[Decision]:
    """Evaluate and decide every pending submission of one insurer (one transaction for the decisions)."""
    pending = pending_submissions(con, cfg.insurer_id)
    if not pending:
        return []
    runner = runner or SuiteRunner()
    order = [sid for sid, _, _ in pending]
    first_ingested = pending[0][2]

    # The insurer's last admitted submission of each record type before the pending ones, and how many.
    admitted = con.execute(
        """SELECT sc.record_type, arg_max(s.submission_id, (s.ingested_at, s.submission_id)), count(*)
           FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           JOIN control.submission_counts sc USING (submission_id)
           WHERE g.insurer_id = ? AND g.status IN (SELECT unnest(?)) AND s.ingested_at <= ?
           GROUP BY ALL""",
        [cfg.insurer_id, list(ADMITTED), first_ingested],
    ).fetchall()
    last_admitted = {rt: sid for rt, sid, _ in admitted}
    admitted_count = {rt: n for rt, _, n in admitted}
    manifests = {
        sid: (mf, me) for sid, mf, me in con.execute(
            "SELECT submission_id, manifest_file, manifest_error FROM control.submission_gate WHERE submission_id IN (SELECT unnest(?))",
            [order],
        ).fetchall()
    }
    facts = read_facts(con, cfg.insurer_id, order + sorted(set(last_admitted.values())))
    record_findings = _record_findings(con, cfg, runner, order)

    # Drift compares with the last admitted submission, so a held one must not serve as the baseline
    # of the next: the profiles settle in delivery order (quality.profiles.settle).
    settled = settle(runner, cfg, order, facts, last_admitted, manifests, admitted_count, set(record_findings))

    profile_findings: dict[str, list[dict]] = {}
    for failure in settled.failures:
        for row in failure["unexpected"]:
            column = failure["kwargs"]["column"]
            profile_findings.setdefault(row["submission_id"], []).append({
                "suite": f"submission {runner.versions['submission']}",
                "record_type": row["record_type"],
                "reason": failure["reason"],
                "expectation": failure["expectation"],
                "columns": failure["kwargs"],
                "describe": failure["describe"],
                "observed": jsonable(row.get(column)),
                "threshold": threshold(runner, failure, settled.parameters),
            })

    decided_at = now()
    decisions = []
    for sid, source_file, _ in pending:
        findings = record_findings.get(sid, []) + profile_findings.get(sid, [])
        reasons = sorted({f["reason"] for f in findings})
        results = {
            "suite_versions": runner.versions,
            "thresholds": cfg.quality.model_dump(),
            "findings": findings,
            "profile": [v for (s, _), v in settled.info.items() if s == sid],
        }
        decisions.append(Decision(sid, source_file, "held" if reasons else "passed", reasons, results))
    _record_decisions(con, decisions, decided_at)
    return decisions


def _record_decisions(con, decisions: list[Decision], at: datetime) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for d in decisions:
            con.execute(
                """UPDATE control.submission_gate SET status = ?, reasons = ?, results = ?, evaluated_at = ?,
                   admitted_at = CASE WHEN ? = 'passed' THEN CAST(? AS TIMESTAMP) END, decided_by = 'gate', decided_at = ?
                   WHERE submission_id = ? AND status = 'pending'""",
                [d.status, d.reasons, json.dumps(d.results, default=jsonable, ensure_ascii=False), at, d.status, at, at,
                 d.submission_id],
            )
            con.execute(
                "INSERT INTO control.submission_gate_log VALUES (?, ?, ?, ?, 'gate', ?)",
                [d.submission_id, at, d.status, d.reasons, None],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise

