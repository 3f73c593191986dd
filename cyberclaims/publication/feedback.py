"""Feedback to each insurer: one report per submission, holding only that insurer's own data.

For every submission: what was delivered, accepted and quarantined (by reason, with sample
rows as delivered — identifiers as keys, as stored), warnings, whether the file was rejected
and why, the submission gate's verdict (drift against the insurer's previous submission,
reconciliation with its manifest, failed expectations, the sector-level tests its rows failed, an
operator's decision and the history of decisions: who, when and why), and whether its rows are in
the published database (and from which version), held back, rejected or revoked.
Written as JSON for machines and HTML for people, to data/feedback/<insurer>/<submission>.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import jinja2

from cyberclaims.ingestion.contract import REASON_DESCRIPTIONS
from cyberclaims.quality.gate import reason_description, reason_description_zh

SAMPLES_PER_REASON = 5


def submission_reports(con: duckdb.DuckDBPyConnection, published_submissions: dict[str, int]) -> list[dict]:
    """One report per submission, built from the internal warehouse (read-only connection)."""
    names: dict[str, list[str]] = {}
    for submission_id, source_file in con.execute(
        "SELECT submission_id, source_file FROM control.submission_files ORDER BY first_seen_at, source_file"
    ).fetchall():
        names.setdefault(submission_id, []).append(source_file)
    counts: dict[str, dict] = {}
    for submission_id, rt, delivered, loaded, quarantined in con.execute(
        "SELECT submission_id, record_type, rows_delivered, rows_loaded, rows_quarantined FROM control.submission_counts"
    ).fetchall():
        counts.setdefault(submission_id, {})[rt] = {"delivered": delivered, "accepted": loaded, "quarantined": quarantined}
    reasons: dict[str, dict[str, int]] = {}
    for submission_id, reason, n in con.execute(
        "SELECT submission_id, reason, count(*) FROM (SELECT submission_id, unnest(reason_codes) AS reason "
        "FROM raw.quarantine) GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        reasons.setdefault(submission_id, {})[reason] = n
    samples: dict[str, dict[str, list]] = {}
    for submission_id, reason, record_type, source_row, row_reasons, original in con.execute(f"""
        SELECT submission_id, reason, record_type, source_row, reasons, original_values FROM (
            SELECT *, unnest(reason_codes) AS reason FROM raw.quarantine)
        QUALIFY row_number() OVER (PARTITION BY submission_id, reason ORDER BY source_row) <= {SAMPLES_PER_REASON}
        ORDER BY submission_id, reason, source_row""").fetchall():
        samples.setdefault(submission_id, {}).setdefault(reason, []).append(
            {"record_type": record_type, "source_row": source_row, "reasons": row_reasons,
             "delivered_values": json.loads(original)}
        )
    gates = {
        r[0]: {"status": r[1], "reasons": r[2] or [], "results": json.loads(r[3]) if r[3] else {},
               "manifest_file": r[4], "evaluated_at": r[5], "decided_by": r[6], "decided_at": r[7], "decision_note": r[8]}
        for r in con.execute(
            "SELECT submission_id, status, reasons, results, manifest_file, evaluated_at, decided_by, decided_at, "
            "decision_note FROM control.submission_gate"
        ).fetchall()
    }
    history: dict[str, list[dict]] = {}
    for submission_id, logged_at, status, log_reasons, actor, note in con.execute(
        "SELECT submission_id, logged_at, status, reasons, actor, note FROM control.submission_gate_log "
        "ORDER BY submission_id, logged_at"
    ).fetchall():
        history.setdefault(submission_id, []).append({
            "at": logged_at.isoformat(timespec="seconds"), "status": status, "reasons": log_reasons or [],
            "by": actor, "note": note})
    # How each canonical field was delivered (column, computed, constant, not delivered), and how complete.
    fields: dict[str, dict[str, list[dict]]] = {}
    for submission_id, rt, name, delivery, source, accepted, with_value in con.execute(
        "SELECT submission_id, record_type, field, delivery, source, rows_accepted, rows_with_value "
        "FROM control.submission_fields ORDER BY submission_id, record_type"
    ).fetchall():
        fields.setdefault(submission_id, {}).setdefault(rt, []).append({
            "field": name, "delivery": delivery, "source": source, "rows_accepted": accepted,
            "rows_with_value": with_value})
    reports = []
    for (submission_id, insurer_id, source_file, status, error, warnings, delivered, loaded, quarantined,
         mapping_version, ingested_at) in con.execute("""
            SELECT submission_id, insurer_id, source_file, status, error, warnings, rows_delivered, rows_loaded,
                   rows_quarantined, mapping_version, ingested_at
            FROM control.submissions ORDER BY insurer_id, ingested_at, submission_id""").fetchall():
        version = published_submissions.get(submission_id)
        gate = gates.get(submission_id)
        reports.append({
            "insurer_id": insurer_id,
            "submission_id": submission_id,
            "source_file": source_file,
            "also_delivered_as": [n for n in names.get(submission_id, []) if n != source_file],
            "ingested_at": ingested_at.isoformat(timespec="seconds"),
            "mapping_version": mapping_version,
            "status": status,
            "error": error,
            "warnings": warnings or [],
            "rows": {"delivered": delivered, "accepted": loaded, "quarantined": quarantined},
            "rows_by_record_type": counts.get(submission_id, {}),
            "quarantine_by_reason": reasons.get(submission_id, {}),
            "reason_descriptions": {r: REASON_DESCRIPTIONS.get(r, "") for r in reasons.get(submission_id, {})},
            "quarantine_samples": samples.get(submission_id, {}),
            "fields": fields.get(submission_id, {}),
            "not_delivered": {rt: [f["field"] for f in items if f["delivery"] in ("not_delivered", "not_mapped")]
                              for rt, items in fields.get(submission_id, {}).items()},
            "gate": _gate_section(gate, history.get(submission_id, [])),
            "publication": _publication(status, gate, version, history.get(submission_id, [])),
        })
    return reports


def _publication(status: str, gate: dict | None, version: int | None, history: list[dict]) -> dict:
    if status == "rejected":
        return {"status": "rejected", "version": None}
    if gate and gate["status"] == "held":
        return {"status": "held", "version": None}
    if gate and gate["status"] == "rejected":
        # Rejected after it had been admitted: revoked, its rows left the marts and later versions.
        revoked = any(h["status"] == "revoked" for h in history)
        return {"status": "revoked by operator" if revoked else "rejected by operator", "version": None}
    if version is not None:
        return {"status": "published", "version": version}
    return {"status": "not yet published", "version": None}


def _gate_section(gate: dict | None, history: list[dict]) -> dict | None:
    if gate is None:
        return None
    results = gate["results"]
    return {
        "status": gate["status"],
        "reasons": gate["reasons"],
        "reason_descriptions": {r: reason_description(r) for r in gate["reasons"]},
        # The same in Chinese where the registry of submission-level measures has it (quality.measures).
        "reason_descriptions_zh": {r: reason_description_zh(r) for r in gate["reasons"] if reason_description_zh(r)},
        "manifest_file": gate["manifest_file"],
        "evaluated_at": gate["evaluated_at"].isoformat(timespec="seconds") if gate["evaluated_at"] else None,
        "decided_by": gate["decided_by"],
        "decided_at": gate["decided_at"].isoformat(timespec="seconds") if gate["decided_at"] else None,
        "decision_note": gate["decision_note"],
        "failed_expectations": results.get("findings", []),
        "drift_and_reconciliation": results.get("profile", []),
        "thresholds": results.get("thresholds", {}),
        "suite_versions": results.get("suite_versions", {}),
        # Blocking tests of the sector build that failed on this submission's rows (it was then held).
        "sector_tests": results.get("sector_tests", []),
        "history": history,
    }


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _as_json(value, default=str) -> str:
    return json.dumps(value, ensure_ascii=False, default=default)


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters.update(fmt=_fmt, as_json=_as_json)


def _html(report: dict) -> str:
    return _TEMPLATES.get_template("feedback.html.j2").render(report=report)


def write_feedback(reports: list[dict], feedback_dir: Path) -> int:
    """Write <insurer>/<submission>.json and .html for every report; returns the number written."""
    for report in reports:
        folder = feedback_dir / report["insurer_id"]
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / report["submission_id"]
        stem.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        stem.with_suffix(".html").write_text(_html(report), encoding="utf-8")
    return len(reports)
