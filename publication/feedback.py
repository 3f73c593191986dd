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

import html
import json
from pathlib import Path

import duckdb

from ingestion.contract import REASON_DESCRIPTIONS
from quality.gate import reason_description

SAMPLES_PER_REASON = 5


def submission_reports(con: duckdb.DuckDBPyConnection, published_submissions: dict[str, int]) -> list[dict]:
    """One report per submission, built from the internal warehouse (read-only connection)."""
    names: dict[str, list[str]] = {}
    for submission_id, source_file in con.execute(
        "SELECT submission_id, source_file FROM raw.submission_files ORDER BY first_seen_at, source_file"
    ).fetchall():
        names.setdefault(submission_id, []).append(source_file)
    counts: dict[str, dict] = {}
    for submission_id, rt, delivered, loaded, quarantined in con.execute(
        "SELECT submission_id, record_type, rows_delivered, rows_loaded, rows_quarantined FROM raw.submission_counts"
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
            "decision_note FROM raw.submission_gate"
        ).fetchall()
    }
    history: dict[str, list[dict]] = {}
    for submission_id, logged_at, status, log_reasons, actor, note in con.execute(
        "SELECT submission_id, logged_at, status, reasons, actor, note FROM raw.submission_gate_log "
        "ORDER BY submission_id, logged_at"
    ).fetchall():
        history.setdefault(submission_id, []).append({
            "at": logged_at.isoformat(timespec="seconds"), "status": status, "reasons": log_reasons or [],
            "by": actor, "note": note})
    # How each canonical field was delivered (column, computed, constant, not delivered), and how complete.
    fields: dict[str, dict[str, list[dict]]] = {}
    for submission_id, rt, name, delivery, source, accepted, with_value in con.execute(
        "SELECT submission_id, record_type, field, delivery, source, rows_accepted, rows_with_value "
        "FROM raw.submission_fields ORDER BY submission_id, record_type"
    ).fetchall():
        fields.setdefault(submission_id, {}).setdefault(rt, []).append({
            "field": name, "delivery": delivery, "source": source, "rows_accepted": accepted,
            "rows_with_value": with_value})
    reports = []
    for (submission_id, insurer_id, source_file, status, error, warnings, delivered, loaded, quarantined,
         mapping_version, ingested_at) in con.execute("""
            SELECT submission_id, insurer_id, source_file, status, error, warnings, rows_delivered, rows_loaded,
                   rows_quarantined, mapping_version, ingested_at
            FROM raw.submissions ORDER BY insurer_id, ingested_at, submission_id""").fetchall():
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


def _gate_html(gate: dict | None) -> str:
    e = html.escape
    if gate is None:
        return ""
    reasons = "".join(f"<li><code>{e(r)}</code> — {e(d)}</li>" for r, d in gate["reason_descriptions"].items())
    decision = ""
    if gate["decided_by"] and gate["decided_by"] != "gate":
        decision = f"<p>Decision by {e(gate['decided_by'])} at {e(gate['decided_at'] or '')}: {e(gate['decision_note'] or '')}</p>"
    drift_rows, recon_rows = "", ""
    for p in gate["drift_and_reconciliation"]:
        prev = p.get("previous_submission") or {}
        m = p.get("measures", {})
        drift_rows += (
            f"<tr><td>{e(p['record_type'])}</td><td>{p['rows']['accepted']}</td><td>{e(prev.get('source_file') or '–')}</td>"
            f"<td>{_fmt(m.get('row_count_ratio'))}</td><td>{_fmt(m.get('premium_ratio'))}</td><td>{_fmt(m.get('paid_ratio'))}</td>"
            f"<td>{_fmt(m.get('open_share_change'))}</td><td>{_fmt(m.get('quarantine_share'))}</td>"
            f"<td>{_fmt(m.get('known_policy_share'))}</td></tr>"
        )
        for r in p.get("reconciliation", []):
            recon_rows += (f"<tr><td>{e(p['record_type'])}</td><td>{e(r['measure'])}</td><td>{e(r['counted'])}</td>"
                           f"<td>{e(r['manifest'] or '–')}</td><td>{e(r['difference'] or '–')}</td></tr>")
    failed = "".join(
        f"<tr><td>{e(f['record_type'])}</td><td><code>{e(f['reason'])}</code></td><td>{e(f['describe'])}</td>"
        f"<td>{e(_fmt(f.get('observed')) if 'observed' in f else str(f.get('unexpected_rows')) + ' rows')}</td>"
        f"<td><code>{e(json.dumps(f.get('threshold') or f.get('samples') or '', ensure_ascii=False, default=str))}</code></td></tr>"
        for f in gate["failed_expectations"]
    )
    sector = "".join(
        f"<tr><td><code>{e(t['test'])}</code></td><td>{t['failing_rows']}</td><td>{e(t.get('held_at') or '')}</td>"
        f"<td><code>{e(json.dumps(t['samples'], ensure_ascii=False, default=str))}</code></td></tr>"
        for t in gate["sector_tests"]
    )
    history = "".join(
        f"<tr><td>{e(h['at'])}</td><td>{e(h['status'])}</td><td>{e(h['by'] or '')}</td>"
        f"<td>{e(', '.join(h['reasons']))}</td><td>{e(h['note'] or '')}</td></tr>"
        for h in gate["history"]
    )
    return f"""<h2>数据质量闸门 Submission gate: {e(gate['status'])}</h2>
{('<ul>' + reasons + '</ul>') if reasons else '<p>Every expectation met.</p>'}{decision}
<h3>Drift against your previous admitted submission</h3>
<table><tr><th>record type</th><th>rows accepted</th><th>previous submission</th><th>rows ratio</th><th>premium ratio</th>
<th>paid ratio</th><th>open-share change</th><th>quarantine share</th><th>policies known</th></tr>{drift_rows}</table>
<p>Ratios are this submission ÷ the previous one; – = not assessed (fewer than
{gate['thresholds'].get('drift', {}).get('min_previous_rows', '')} rows, or no previous submission).</p>
<h3>Reconciliation with your manifest{(' ' + e(gate['manifest_file'])) if gate['manifest_file'] else ''}</h3>
{('<table><tr><th>record type</th><th>measure</th><th>counted</th><th>manifest</th><th>difference</th></tr>' + recon_rows + '</table>') if recon_rows else '<p>No manifest delivered.</p>'}
{('<h3>Failed expectations</h3><table><tr><th>record type</th><th>reason</th><th>expectation</th><th>observed</th><th>bound / sample rows</th></tr>' + failed + '</table>') if failed else ''}
{('<h3>Sector tests failed on your rows</h3><table><tr><th>test</th><th>failing rows</th><th>held at</th><th>sample rows</th></tr>' + sector + '</table>') if sector else ''}
{('<h3>Decisions</h3><table><tr><th>at</th><th>status</th><th>by</th><th>reasons</th><th>note</th></tr>' + history + '</table>') if history else ''}"""


def _html(report: dict) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(rt)}</td><td>{c['delivered']}</td><td>{c['accepted']}</td><td>{c['quarantined']}</td></tr>"
        for rt, c in report["rows_by_record_type"].items()
    )
    reasons = "".join(
        f"<tr><td><code>{e(r)}</code></td><td>{n}</td><td>{e(report['reason_descriptions'].get(r, ''))}</td></tr>"
        for r, n in report["quarantine_by_reason"].items()
    )
    samples = "".join(
        f"<h3><code>{e(reason)}</code></h3><table><tr><th>type</th><th>row</th><th>reasons</th><th>delivered values</th></tr>"
        + "".join(
            f"<tr><td>{e(s['record_type'])}</td><td>{s['source_row']}</td><td>{e(', '.join(s['reasons']))}</td>"
            f"<td><code>{e(json.dumps(s['delivered_values'], ensure_ascii=False))}</code></td></tr>"
            for s in items
        ) + "</table>"
        for reason, items in report["quarantine_samples"].items()
    )
    pub = report["publication"]
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>Submission feedback {e(report['source_file'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}}code{{font-size:.85em}}</style></head>
<body><h1>报送反馈 Submission feedback</h1>
<p><b>{e(report['insurer_id'])}</b> · {e(report['source_file'])} · submission <code>{e(report['submission_id'])}</code>
· ingested {e(report['ingested_at'])} · mapping {e(report['mapping_version'] or '')}</p>
<p>Status: <b>{e(report['status'])}</b>{(' — ' + e(report['error'])) if report['error'] else ''}.
Publication: <b>{e(pub['status'])}</b>{(' in version ' + str(pub['version'])) if pub['version'] else ''}.</p>
{('<p>Also delivered as: ' + e(', '.join(report['also_delivered_as'])) + ' (same content, loaded once).</p>') if report['also_delivered_as'] else ''}
{('<p>Warnings: ' + e('; '.join(report['warnings'])) + '</p>') if report['warnings'] else ''}
{_gate_html(report['gate'])}
<h2>Rows</h2><table><tr><th>record type</th><th>delivered</th><th>accepted</th><th>quarantined</th></tr>{rows}</table>
{_fields_html(report["fields"])}
<h2>Quarantine by reason</h2><table><tr><th>reason</th><th>rows</th><th>meaning</th></tr>{reasons}</table>
<h2>Sample quarantined rows (row = position in your file)</h2>{samples or '<p>None.</p>'}
</body></html>"""


def _fields_html(fields: dict[str, list[dict]]) -> str:
    """Per record type, how each canonical field was delivered and the share of accepted rows with a value."""
    e = html.escape
    if not fields:
        return ""
    missing_style = ' style="background:#fde8e8"'
    out = ["<h2>Fields delivered</h2><p>Fields <b>not delivered</b> are empty on every row and count as unknown in "
           "the sector's statistics.</p>"]
    for rt, items in fields.items():
        rows = []
        for f in items:
            style = missing_style if f["delivery"] in ("not_delivered", "not_mapped") else ""
            share = f"{100 * f['rows_with_value'] / f['rows_accepted']:.1f} %" if f["rows_accepted"] else "–"
            delivery = (f["delivery"] or "").replace("_", " ")
            rows.append(f"<tr{style}><td><code>{e(f['field'])}</code></td><td>{e(delivery)}</td>"
                        f"<td>{e(f['source'] or '')}</td><td>{share}</td></tr>")
        out.append(f"<h3>{e(rt)}</h3><table><tr><th>field</th><th>delivered as</th><th>your column</th>"
                   f"<th>accepted rows with a value</th></tr>{''.join(rows)}</table>")
    return "\n".join(out)


def write_feedback(reports: list[dict], feedback_dir: Path) -> int:
    """Write <insurer>/<submission>.json and .html for every report; returns the number written."""
    for report in reports:
        folder = feedback_dir / report["insurer_id"]
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / report["submission_id"]
        stem.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        stem.with_suffix(".html").write_text(_html(report), encoding="utf-8")
    return len(reports)
