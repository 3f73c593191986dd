"""Feedback to each insurer: one report per submission, holding only that insurer's own data.

For every submission: what was delivered, accepted and quarantined (by reason, with sample
rows as delivered — identifiers as keys, as stored), warnings, whether the file was rejected
and why, and whether its rows are in the published database (and from which version).
Written as JSON for machines and HTML for people, to data/feedback/<insurer>/<submission>.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import duckdb

from ingestion.contract import REASON_DESCRIPTIONS

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
    reports = []
    for (submission_id, insurer_id, source_file, status, error, warnings, delivered, loaded, quarantined,
         mapping_version, ingested_at) in con.execute("""
            SELECT submission_id, insurer_id, source_file, status, error, warnings, rows_delivered, rows_loaded,
                   rows_quarantined, mapping_version, ingested_at
            FROM raw.submissions ORDER BY insurer_id, ingested_at, submission_id""").fetchall():
        version = published_submissions.get(submission_id)
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
            "publication": (
                {"status": "rejected", "version": None} if status == "rejected"
                else {"status": "published", "version": version} if version is not None
                else {"status": "not yet published", "version": None}
            ),
        })
    return reports


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
<h2>Rows</h2><table><tr><th>record type</th><th>delivered</th><th>accepted</th><th>quarantined</th></tr>{rows}</table>
<h2>Quarantine by reason</h2><table><tr><th>reason</th><th>rows</th><th>meaning</th></tr>{reasons}</table>
<h2>Sample quarantined rows (row = position in your file)</h2>{samples or '<p>None.</p>'}
</body></html>"""


def write_feedback(reports: list[dict], feedback_dir: Path) -> int:
    """Write <insurer>/<submission>.json and .html for every report; returns the number written."""
    for report in reports:
        folder = feedback_dir / report["insurer_id"]
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / report["submission_id"]
        stem.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        stem.with_suffix(".html").write_text(_html(report), encoding="utf-8")
    return len(reports)
