"""The mapping engine on hand-made source frames: parsing, units, codes, reasons."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.mapping import LayoutMismatch, map_frame
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
from cyberclaims.ingestion.readers import SOURCE_ROW
from cyberclaims.ingestion.taxonomy import load_taxonomy

CONFIGS = load_all_configs()
TAXONOMY = load_taxonomy()
PSEUDO = Pseudonymizer(b"s" * 32)

CJ_CLAIM = {
    "赔案号": "CJ-C-1", "事故编号": "CJ-I-1", "保单号": "CJ-P-1", "保障责任": "数据恢复", "赔案状态": "未决",
    "立案日期": "20240305", "结案日期": "", "评估日期": "20240331", "已决赔款(万元)": "12.3456",
    "已决理赔费用(万元)": "0.05", "未决赔款(万元)": "100", "追偿金额(万元)": "", "币种": "人民币",
}


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_row_index(SOURCE_ROW, offset=1).with_columns(
        pl.col(SOURCE_ROW).cast(pl.Int64)
    )


def test_ten_thousand_yuan_and_compact_dates_are_exact():
    batch = map_frame(frame([CJ_CLAIM]), CONFIGS["changjiang_ins"], "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.quarantine.is_empty()
    row = batch.good.row(0, named=True)
    assert row["paid_indemnity"] == Decimal("123456.00")
    assert row["paid_expense"] == Decimal("500.00")
    assert row["case_reserve"] == Decimal("1000000.00")
    assert row["recoveries"] is None
    assert row["report_date"] == date(2024, 3, 5) and row["valuation_date"] == date(2024, 3, 31)
    assert row["coverage_section"] == "data_restoration" and row["status"] == "open" and row["currency"] == "CNY"
    assert batch.good.schema["paid_indemnity"] == pl.Decimal(18, 2)
    assert "claim_key" in batch.good.columns and "claim_number" not in batch.good.columns


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"保障责任": "宠物责任"}, "UNKNOWN_CODE:coverage_section"),
        ({"评估日期": ""}, "MISSING_REQUIRED:valuation_date"),
        ({"评估日期": "2024-13-45"}, "INVALID_DATE:valuation_date"),
        ({"已决赔款(万元)": "十二"}, "INVALID_NUMBER:paid_indemnity"),
        ({"已决赔款(万元)": "-1"}, "NEGATIVE_AMOUNT:paid_indemnity"),
        ({"结案日期": "20240301"}, "DATE_ORDER:closed_date<report_date"),
        ({"币种": "贝壳"}, "UNKNOWN_CODE:currency"),
    ],
)
def test_bad_values_are_quarantined_with_reason_and_good_rows_still_load(change, reason):
    rows = [CJ_CLAIM, CJ_CLAIM | {"赔案号": "CJ-C-2"} | change]
    batch = map_frame(frame(rows), CONFIGS["changjiang_ins"], "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.good.height == 1 and batch.quarantine.height == 1
    q = batch.quarantine.row(0, named=True)
    assert q["source_row"] == 2 and q["reasons"] == [reason]


def test_exact_duplicate_rows_quarantine_the_second_copy():
    batch = map_frame(frame([CJ_CLAIM, CJ_CLAIM]), CONFIGS["changjiang_ins"], "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.good["source_row"].to_list() == [1]
    assert batch.quarantine.select("source_row", "reasons").to_dicts() == [{"source_row": 2, "reasons": ["DUPLICATE_ROW"]}]


def test_quarantine_keeps_delivered_values_but_keys_identifiers_and_drops_names():
    policy = {
        "PolicyNo": "DF-1", "InsuredUSCC": "91350100M000100Y40", "InsuredName": "厦门某某科技有限公司", "IndustryCode": "6510",
        "Sector": "TMT", "RegionCode": "350100", "AnnualRevenue": "1000000", "Employees": "20", "Product": "CYB-COMP",
        "Coverages": "IR;BI", "InceptionDate": "2024-01-01", "ExpiryDate": "2024-12-31", "Limit": "1000000",
        "Deductible": "10000", "Premium": "8000", "Currency": "CNY", "Standalone": "Y", "PilotCode": "", "RiskScore": "70",
    }
    batch = map_frame(frame([policy]), CONFIGS["dongfang_pc"], "policy", TAXONOMY, PSEUDO)
    assert batch.quarantine["reasons"].to_list() == [["INVALID_USCC:insured_id"]]
    original = batch.quarantine["original_values"][0]
    assert "91350100M000100Y40" not in original and "厦门某某" not in original and "InsuredName" not in original
    assert '"Premium":"8000"' in original and '"PolicyNo":"' in original and '"DF-1"' not in original


def test_missing_column_rejects_the_file_and_extra_column_warns():
    broken = frame([CJ_CLAIM]).drop("评估日期")
    with pytest.raises(LayoutMismatch, match="评估日期"):
        map_frame(broken, CONFIGS["changjiang_ins"], "claim_valuation", TAXONOMY, PSEUDO)
    extra = frame([CJ_CLAIM | {"经纪人": "x"}])
    batch = map_frame(extra, CONFIGS["changjiang_ins"], "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.good.height == 1 and batch.warnings == ["claim_valuation: unexpected column(s) ignored: 经纪人"]
