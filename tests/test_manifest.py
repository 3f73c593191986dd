"""Manifests of control totals: read in the file's own units, problems kept as errors, never a crash."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.manifest import ROW_COUNT, manifest_path, read_manifest


@pytest.fixture
def changjiang():
    return load_all_configs()["changjiang_ins"]


def deliver(tmp_path, doc, name="CJ_CLAIM_202403.csv"):
    folder = tmp_path / "changjiang_ins"
    folder.mkdir(exist_ok=True)
    data = folder / name
    data.write_text("x\n", encoding="utf-8")
    text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
    manifest_path(data).write_text(text, encoding="utf-8")
    return data


def test_totals_in_ten_thousand_yuan_are_converted_and_headers_or_canonical_names_accepted(tmp_path, changjiang):
    paid = changjiang.record_types["claim_valuation"].columns["paid_indemnity"]
    data = deliver(tmp_path, {"data_file": "CJ_CLAIM_202403.csv", "record_types": {"claim_valuation": {
        "row_count": 12, "totals": {paid: "12.3456", "paid_expense": "0.5"}}}})
    manifest = read_manifest(data, tmp_path, changjiang, ["claim_valuation"])
    assert manifest.error is None and manifest.file == "changjiang_ins/CJ_CLAIM_202403.csv.manifest.json"
    assert manifest.figures == {
        ("claim_valuation", ROW_COUNT): Decimal(12),
        ("claim_valuation", "paid_indemnity"): Decimal("123456.00"),  # 万元 → 元
        ("claim_valuation", "paid_expense"): Decimal("5000.00"),
    }


@pytest.mark.parametrize("doc, problem", [
    ("{not json", "not readable"),
    ({"data_file": "CJ_CLAIM_202402.csv", "record_types": {}}, "not 'CJ_CLAIM_202403.csv'"),
    ({"data_file": "CJ_CLAIM_202403.csv", "record_types": {"policy": {"row_count": 1}}}, "not in the data file: policy"),
    ({"data_file": "CJ_CLAIM_202403.csv", "record_types": {"claim_valuation": {"row_count": -1}}}, "non-negative integer"),
    ({"data_file": "CJ_CLAIM_202403.csv", "record_types": {"claim_valuation": {"row_count": 1, "totals": {"Bonus": 1}}}},
     "totals.Bonus is not an amount column"),
    ({"data_file": "CJ_CLAIM_202403.csv", "record_types": {"claim_valuation": {"row_count": 1,
                                                                                "totals": {"paid_expense": "abc"}}}},
     "not readable"),
])
def test_a_bad_manifest_is_an_error_not_a_crash(tmp_path, changjiang, doc, problem):
    data = deliver(tmp_path, doc)
    manifest = read_manifest(data, tmp_path, changjiang, ["claim_valuation"])
    assert manifest.figures == {} and problem in manifest.error, manifest.error


def test_no_manifest_delivered_is_none(tmp_path, changjiang):
    folder = tmp_path / "changjiang_ins"
    folder.mkdir()
    (folder / "CJ_CLAIM_202403.csv").write_text("x\n", encoding="utf-8")
    assert read_manifest(folder / "CJ_CLAIM_202403.csv", tmp_path, changjiang, ["claim_valuation"]) is None
