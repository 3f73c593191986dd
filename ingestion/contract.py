"""Canonical record contract v1: the fields every insurer layout is mapped into.

The contract is data: each field has a canonical name, a logical kind that says how a
source value is parsed, whether it is required, and (for coded fields) the taxonomy seed
its values must belong to. Readers, mapping, validation, the warehouse DDL and the
sample generator all derive from these definitions, so adding a field happens here once.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT_VERSION = "1"

# Money: DECIMAL(18,2) in the row's currency (up to 10^16 yuan, two decimals).
MONEY_PRECISION, MONEY_SCALE = 18, 2
# Annual revenue can exceed a policy amount by orders of magnitude.
REVENUE_PRECISION = 22

RECORD_TYPES = ("policy", "incident", "claim_valuation")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str | identifier | date | money | revenue | int | number | bool | code | code_list | str_list | currency
    required: bool = False
    taxonomy: str | None = None  # seed file stem for code / code_list kinds
    key_scope: str | None = None  # identifier kinds: "insured" (sector-wide) or an insurer-scoped entity
    stored: bool = True  # False: read for validation only, never written anywhere
    # A required field an insurer may declare `not_delivered` in its config: its rows then carry NULL
    # and the marts treat it as unknown. Optional fields may always be declared not delivered.
    may_be_not_delivered: bool = False
    why: str = ""  # why the field is required, or why it may be missing (docs/onboarding.md)

    @property
    def can_be_not_delivered(self) -> bool:
        return not self.required or self.may_be_not_delivered


POLICY = (
    Field("policy_number", "identifier", True, key_scope="policy"),
    Field("insured_id", "identifier", True, key_scope="insured"),
    Field("insured_name", "str", stored=False),
    Field("industry_code", "str"),
    Field("sector_code", "code", taxonomy="tax_sector"),
    Field("region_code", "str", True, may_be_not_delivered=True,
          why="the province segment; without it the policy's province is unknown in the marts and the regulator's province table"),
    Field("annual_revenue", "revenue"),
    Field("employee_count", "int"),
    Field("product_type", "code", True, taxonomy="tax_product_type"),
    Field("coverage_sections", "code_list", True, taxonomy="tax_coverage_section", may_be_not_delivered=True,
          why="the sections granted; many bordereaux carry only the product, which implies them"),
    Field("inception_date", "date", True),
    Field("expiry_date", "date", True),
    Field("limit_amount", "money", True),
    Field("deductible", "money"),
    Field("written_premium", "money", True),
    Field("currency", "currency", True),
    Field("is_standalone", "bool"),
    Field("pilot_code", "str"),
    Field("risk_assessment_score", "int"),
)

INCIDENT = (
    Field("incident_number", "identifier", True, key_scope="incident"),
    Field("policy_number", "identifier", True, key_scope="policy"),
    Field("insured_id", "identifier", True, key_scope="insured"),
    Field("occurred_date", "date", True),
    Field("discovered_date", "date"),
    Field("reported_date", "date", True),
    Field("resolved_date", "date"),
    Field("incident_type", "code", True, taxonomy="tax_incident_type"),
    Field("attack_vector", "code", taxonomy="tax_attack_vector"),
    Field("cve_ids", "str_list"),
    Field("records_affected", "int"),
    Field("data_types", "code_list", taxonomy="tax_data_type"),
    Field("downtime_hours", "number"),
    Field("systemic_event_ref", "str"),
    Field("description", "str", stored=False),
)

CLAIM_VALUATION = (
    Field("claim_number", "identifier", True, key_scope="claim"),
    Field("incident_number", "identifier", True, key_scope="incident"),
    Field("policy_number", "identifier", True, key_scope="policy"),
    Field("coverage_section", "code", True, taxonomy="tax_coverage_section", may_be_not_delivered=True,
          why="the section a claim is paid under; a bordereau without the split gives section-level severities as unknown"),
    Field("status", "code", True, taxonomy="tax_claim_status"),
    Field("report_date", "date", True),
    Field("closed_date", "date"),
    Field("valuation_date", "date", True),
    Field("paid_indemnity", "money", True),
    Field("paid_expense", "money", True),
    Field("case_reserve", "money", True),
    Field("recoveries", "money"),
    Field("currency", "currency", True),
    # The insurer's own incurred figure, where its layout carries one: the submission gate checks it
    # against paid_indemnity + paid_expense + case_reserve − recoveries. The marts compute incurred.
    Field("reported_incurred", "money"),
)

FIELDS: dict[str, tuple[Field, ...]] = {
    "policy": POLICY,
    "incident": INCIDENT,
    "claim_valuation": CLAIM_VALUATION,
}

# Date pairs (earlier, later) that must be in order when both are present.
DATE_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "policy": (("inception_date", "expiry_date"),),
    "incident": (
        ("occurred_date", "discovered_date"),
        ("occurred_date", "reported_date"),
        ("discovered_date", "reported_date"),
        ("occurred_date", "resolved_date"),
    ),
    "claim_valuation": (
        ("report_date", "valuation_date"),
        ("report_date", "closed_date"),
    ),
}

# Lineage columns every stored row carries.
LINEAGE_COLUMNS = (
    ("insurer_id", "VARCHAR"),
    ("submission_id", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
    ("ingested_at", "TIMESTAMP"),
    ("mapping_version", "VARCHAR"),
)

# Warehouse table per record type (schema raw).
RAW_TABLE = {
    "policy": "policies",
    "incident": "incidents",
    "claim_valuation": "claim_valuations",
}

# Row-level reason codes (machine-readable; the part after ':' names the field).
REASON_MISSING = "MISSING_REQUIRED"
REASON_INVALID_DATE = "INVALID_DATE"
REASON_INVALID_NUMBER = "INVALID_NUMBER"
REASON_INVALID_USCC = "INVALID_USCC"
REASON_INVALID_REGION = "INVALID_REGION"
REASON_DATE_ORDER = "DATE_ORDER"
REASON_NEGATIVE = "NEGATIVE_AMOUNT"
REASON_OUT_OF_RANGE = "OUT_OF_RANGE"
REASON_UNKNOWN_CODE = "UNKNOWN_CODE"
REASON_DUPLICATE = "DUPLICATE_ROW"
REASON_NO_SECTOR = "NO_SECTOR"
REASON_AMBIGUOUS_NUMBER = "AMBIGUOUS_NUMBER"
REASON_INCOMPLETE_PARTS = "INCOMPLETE_PARTS"
REASON_PARTIAL_DATE = "PARTIAL_DATE"

REASON_DESCRIPTIONS = {
    REASON_MISSING: "a required field is empty",
    REASON_INVALID_DATE: "a date does not match any of the layout's date formats",
    REASON_INVALID_NUMBER: "a number or amount cannot be parsed",
    REASON_INVALID_USCC: "insured_id is not a valid unified social credit code (GB 32100 check digit)",
    REASON_INVALID_REGION: "region_code is not a six-digit GB/T 2260 code of a known province",
    REASON_DATE_ORDER: "two dates are out of order (e.g. expiry before inception)",
    REASON_NEGATIVE: "an amount that cannot be negative is negative",
    REASON_OUT_OF_RANGE: "a value is outside its allowed range",
    REASON_UNKNOWN_CODE: "a code maps to nothing in the layout's value map or the taxonomy",
    REASON_DUPLICATE: "the row repeats an earlier row of the same submission exactly",
    REASON_NO_SECTOR: "neither an industry code nor a sector label is given",
    REASON_AMBIGUOUS_NUMBER: "an amount reads differently under the two usual number locales (e.g. 1,234 with a "
                             "decimal comma: three decimals cannot be money), so it is not guessed",
    REASON_INCOMPLETE_PARTS: "a field computed from several source columns (sum, concat) has some parts empty",
    REASON_PARTIAL_DATE: "a date built from year / month / day parts lacks the month or the day, and the layout "
                         "rejects partial dates",
}


def stored_fields(record_type: str) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS[record_type] if f.stored)


def field_map(record_type: str) -> dict[str, Field]:
    return {f.name: f for f in FIELDS[record_type]}


def key_column(field: Field) -> str:
    """Name of the pseudonymized column that replaces an identifier field."""
    return field.name.removesuffix("_number").removesuffix("_id") + "_key"
