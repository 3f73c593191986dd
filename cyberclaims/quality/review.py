"""Operator review of the gate's decisions: release, reject or revoke a submission (with who and why),
re-judging the later drift holds a release changes the baseline of, and the overview of gate statuses."""

from __future__ import annotations

from datetime import datetime

import duckdb

from cyberclaims.quality.gate import ADMITTED, now


class ReviewError(ValueError):
    """An operator decision that cannot be taken (unknown id, wrong state, no note)."""


def resolve_submission(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    """The full submission id for an id or an unambiguous prefix of at least 8 characters."""
    if len(prefix) < 8:
        raise ReviewError("give at least 8 characters of the submission id")
    matches = [r[0] for r in con.execute(
        "SELECT submission_id FROM control.submission_gate WHERE starts_with(submission_id, ?)", [prefix.lower()]
    ).fetchall()]
    if not matches:
        raise ReviewError(f"no loaded submission with id {prefix}")
    if len(matches) > 1:
        raise ReviewError(f"{prefix} is ambiguous: {len(matches)} submissions")
    return matches[0]


# Operator actions: the gate statuses each applies to. A rejection of an admitted submission is a
# revocation (`revoke` says so explicitly): its rows leave the marts and the next published version.
REVIEW_ACTIONS = {
    "release": ("held",),
    "reject": ("held", *ADMITTED),
    "revoke": ADMITTED,
}


def review(con: duckdb.DuckDBPyConnection, submission: str, action: str, actor: str, note: str) -> dict:
    """An operator releases (admits) a held submission, rejects a held or admitted one, or revokes an
    admitted one (never admitted again); recorded with who and why. The gate status of a rejected or
    revoked submission is `rejected`; the log says `revoked` when it had been admitted."""
    if action not in REVIEW_ACTIONS:
        raise ReviewError(f"unknown action {action!r} ({', '.join(REVIEW_ACTIONS)})")
    if not note or not note.strip():
        raise ReviewError("a note saying why is required")
    sid = resolve_submission(con, submission)
    status, insurer_id, source_file = con.execute(
        "SELECT g.status, g.insurer_id, s.source_file FROM control.submission_gate g JOIN control.submissions s USING (submission_id) "
        "WHERE submission_id = ?", [sid]
    ).fetchall()[0]
    if status not in REVIEW_ACTIONS[action]:
        allowed = " or ".join(REVIEW_ACTIONS[action])
        hint = {"release": "only a held submission can be released",
                "reject": "only a held or admitted submission can be rejected",
                "revoke": "only an admitted submission can be revoked (reject a held one)"}[action]
        raise ReviewError(f"{source_file} ({sid[:12]}) is {status}, not {allowed}: {hint}")
    new_status = "released" if action == "release" else "rejected"
    logged = "revoked" if status in ADMITTED else new_status
    at = now()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            """UPDATE control.submission_gate SET status = ?, admitted_at = CASE WHEN ? = 'released' THEN CAST(? AS TIMESTAMP) END,
               decided_by = ?, decided_at = ?, decision_note = ? WHERE submission_id = ?""",
            [new_status, new_status, at, actor, at, note.strip(), sid],
        )
        con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, ?, [], ?, ?)", [sid, at, logged, actor, note.strip()])
        reopened = _reopen_drift_holds(con, sid, insurer_id, at) if new_status == "released" else []
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"submission_id": sid, "insurer_id": insurer_id, "source_file": source_file, "status": new_status,
            "logged": logged, "previous_status": status, "decided_by": actor,
            "decided_at": at.isoformat(timespec="seconds"), "reopened": reopened}


def _reopen_drift_holds(con: duckdb.DuckDBPyConnection, released: str, insurer_id: str, at: datetime) -> list[str]:
    """A released submission becomes the drift baseline of the insurer's later deliveries: the later
    ones held for drift alone were judged against an older baseline, so they return to `pending` and
    the next cycle's gate judges them again (in delivery order, against the released one)."""
    rows = con.execute(
        """SELECT g.submission_id, s.source_file FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           CROSS JOIN (SELECT ingested_at, submission_id FROM control.submissions WHERE submission_id = ?) r
           WHERE g.insurer_id = ? AND g.status = 'held' AND len(g.reasons) > 0
             AND list_bool_and(list_transform(g.reasons, lambda x: starts_with(x, 'DRIFT_')))
             AND (s.ingested_at > r.ingested_at OR (s.ingested_at = r.ingested_at AND s.submission_id > r.submission_id))
           ORDER BY s.ingested_at, s.submission_id""",
        [released, insurer_id],
    ).fetchall()
    note = f"re-evaluated: {released[:12]} was released and is the new drift baseline"
    for sid, _ in rows:
        con.execute(
            """UPDATE control.submission_gate SET status = 'pending', reasons = [], results = NULL, evaluated_at = NULL,
               admitted_at = NULL, decided_by = NULL, decided_at = NULL, decision_note = NULL WHERE submission_id = ?""",
            [sid],
        )
        con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, 'pending', [], 'gate', ?)", [sid, at, note])
    return [f for _, f in rows]


def gate_overview(con: duckdb.DuckDBPyConnection, status: str | None = None, insurer: str | None = None) -> list[dict]:
    rows = con.execute(
        """SELECT g.submission_id, g.insurer_id, s.source_file, g.status, g.reasons, g.evaluated_at, g.decided_by,
                  g.decision_note
           FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           WHERE (? IS NULL OR g.status = ?) AND (? IS NULL OR g.insurer_id = ?)
           ORDER BY g.insurer_id, s.ingested_at, s.source_file""",
        [status, status, insurer, insurer],
    ).fetchall()
    keys = ("submission_id", "insurer_id", "source_file", "status", "reasons", "evaluated_at", "decided_by", "decision_note")
    return [dict(zip(keys, r, strict=True)) for r in rows]

