"""The insurer feedback page: every figure of the report appears where a reader looks for it, and
values from an insurer's file (headers, cells, notes) are shown as text, never as markup."""

from __future__ import annotations

from html.parser import HTMLParser

from cyberclaims.publication.feedback import _html

HOSTILE = '<script>alert("x")</script>&'


class _Page(HTMLParser):
    """Tables as lists of cell texts, headings and the elements seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        for part in (self._cell, self._heading):
            if part is not None:
                part.append(data)


def _report(text: str) -> dict:
    return {
        "insurer_id": "huanan_general", "submission_id": "ab" * 32, "source_file": f"huanan_general/{text}.xlsx",
        "also_delivered_as": [], "ingested_at": "2026-12-03T07:33:42", "mapping_version": "2024.1",
        "status": "loaded", "error": None, "warnings": [f"header {text} ignored"],
        "rows_by_record_type": {"policy": {"delivered": 22, "accepted": 21, "quarantined": 1}},
        "quarantine_by_reason": {"DATE_ORDER": 1},
        "reason_descriptions": {"DATE_ORDER": "two dates are out of order"},
        "quarantine_samples": {"DATE_ORDER": [{"record_type": "policy", "source_row": 7,
                                               "reasons": ["DATE_ORDER:expiry_date<inception_date"],
                                               "delivered_values": {"保险单号": text}}]},
        "fields": {"policy": [
            {"field": "inception_date", "delivery": "column", "source": text, "rows_accepted": 21, "rows_with_value": 21},
            {"field": "coverage_sections", "delivery": "not_delivered", "source": None, "rows_accepted": 21,
             "rows_with_value": 0}]},
        "publication": {"status": "published", "version": 3},
        "gate": {"status": "held", "reason_descriptions": {"MANIFEST_ROW_COUNT": "rows differ from the manifest"},
                 "manifest_file": "huanan_general/m.json", "decided_by": "ops", "decided_at": "2026-12-04",
                 "decision_note": text,
                 "drift_and_reconciliation": [{"record_type": "policy", "rows": {"accepted": 21},
                                               "previous_submission": {"source_file": "huanan_202408.xlsx"},
                                               "measures": {"row_count_ratio": 1.05, "paid_ratio": None},
                                               "reconciliation": [{"measure": "row_count", "counted": "22",
                                                                   "manifest": "25", "difference": "-3"}]}],
                 "failed_expectations": [{"record_type": "policy", "reason": "MANIFEST_ROW_COUNT",
                                          "describe": "rows delivered − rows stated", "observed": 3.0,
                                          "threshold": {"max": 0}}],
                 "sector_tests": [], "thresholds": {"drift": {"min_previous_rows": 50}},
                 "history": [{"at": "2026-12-04", "status": "admitted", "by": "ops", "reasons": ["MANIFEST_ROW_COUNT"],
                              "note": text}]},
    }


def test_the_page_carries_every_figure_of_the_report():
    page = _Page()
    page.feed(_html(_report("plain")))
    rows = page.rows
    assert ["policy", "22", "21", "1"] in rows
    assert ["DATE_ORDER", "1", "two dates are out of order"] in rows
    assert ["policy", "7", "DATE_ORDER:expiry_date<inception_date", '{"保险单号": "plain"}'] in rows
    assert ["policy", "21", "huanan_202408.xlsx", "1.050", "–", "–", "–", "–", "–"] in rows
    assert ["policy", "row_count", "22", "25", "-3"] in rows
    assert ["policy", "MANIFEST_ROW_COUNT", "rows delivered − rows stated", "3.000", '{"max": 0}'] in rows
    assert ["inception_date", "column", "plain", "100.0 %"] in rows
    assert ["coverage_sections", "not delivered", "", "0.0 %"] in rows
    assert ["2026-12-04", "admitted", "ops", "MANIFEST_ROW_COUNT", "plain"] in rows
    assert "数据质量闸门 Submission gate: held" in page.headings
    assert "Reconciliation with your manifest huanan_general/m.json" in page.headings
    assert "Decisions" in page.headings


def test_a_hostile_value_is_shown_as_text():
    markup = _html(_report(HOSTILE))
    page = _Page()
    page.feed(markup)
    assert "script" not in page.tags
    assert HOSTILE not in markup
    assert ["inception_date", "column", HOSTILE, "100.0 %"] in page.rows
    assert ["2026-12-04", "admitted", "ops", "MANIFEST_ROW_COUNT", HOSTILE] in page.rows


def test_a_report_without_gate_or_samples():
    report = _report("plain") | {"gate": None, "quarantine_samples": {}, "fields": {}}
    page = _Page()
    page.feed(_html(report))
    assert not any(h.startswith("数据质量闸门") for h in page.headings)
    assert "Fields delivered" not in page.headings
    assert "None." in _html(report)
