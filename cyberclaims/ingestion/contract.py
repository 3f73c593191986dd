"""Canonical record contract v1: the fields every insurer layout is mapped into.

The contract is data: each field has a canonical name, a logical kind that says how a
source value is parsed, whether it is required, and (for coded fields) the taxonomy seed
its values must belong to. Readers, mapping, validation, the warehouse DDL and the
sample generator all derive from these definitions, so adding a field happens here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cyberclaims.ingestion.pseudonymize import USCC_CHARSET

CONTRACT_VERSION = "1"

# Money: DECIMAL(18,2) in the row's currency (up to 10^16 yuan, two decimals).
MONEY_PRECISION, MONEY_SCALE = 18, 2
# Annual revenue can exceed a policy amount by orders of magnitude.
REVENUE_PRECISION = 22

RECORD_TYPES = ("policy", "incident", "claim_valuation")

# An 18-character token shaped like a unified social credit code (GB 32100 code set, six digits of region after
# the registration authority and type), standing alone in any text. Ingestion quarantines a stored text value that
# holds one; the publication audit refuses a version whose text holds one. Group 2 is the token.
_USCC_SET = f"[{re.escape(USCC_CHARSET)}]"
USCC_REGEX = f"(^|[^0-9A-Za-z])({_USCC_SET}{{2}}[0-9]{{6}}{_USCC_SET}{{10}})([^0-9A-Za-z]|$)"


@dataclass(frozen=True)
class Form:
    """One way a coded text value may be written: it matches every regex of all_of and none of none_of."""

    all_of: tuple[str, ...]
    none_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """What a coded text field holds (each item, for a list): a value of any one of the forms, in upper case once
    normalized (NFKC, so full-width ＣＶＥ－２０２３ reads as CVE-2023). `example` is shown to insurers."""

    name: str
    example: str
    forms: tuple[Form, ...]


# CVE ids: the year, then a sequence number of four or more digits (CVE-2021-44228).
CVE_ID = Shape("a CVE id", "CVE-2023-34362", (Form((r"^CVE-(19|20)[0-9]{2}-[0-9]{4,7}$",)),))
# A programme or event code: hyphen-separated letters and digits led by a letter, one segment the year
# (PILOT-2024-TEL, VENDOR-OUTAGE-2024-07). No run of five digits: that is a policy, incident or claim number's
# sequence, or a registration code, never part of a programme's or an event's name. An insurer id (lower case
# with '_'), a name (blanks, Chinese characters), a USCC (18 characters in one segment) or a number such as
# CJ-2024-CY-0001234 or PRH/CY/2024/00123 has none of these shapes.
_DATED_CODE = Form(
    (r"^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16}){1,6}$", r"(^|-)(19|20)[0-9]{2}(-|$)"),
    (r"[0-9]{5}",),
)
# A pattern, not a registry of pilot codes: the pilot office opens pilots as it goes, and a registry (a seed) would
# quarantine every policy of a new pilot until a release adds its code. Nor is the code's sector part checked
# against the pilot sectors of tax_sector: the office's codes need not spell the sector.
PILOT_CODE = Shape("a pilot programme code with its year", "PILOT-2024-TEL", (_DATED_CODE,))
EVENT_REF = Shape("a CVE id or an event code with its year", "CVE-2023-34362, VENDOR-OUTAGE-2024-07",
                  (*CVE_ID.forms, _DATED_CODE))


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
    shape: Shape | None = None  # str / str_list kinds: what a value (each item) must look like
    why: str = ""  # why the field is required for pricing, or why it may be missing (docs/onboarding.md)
    label_zh: str = ""  # the bilingual label of the bureau's submission template
    description: str = ""

    @property
    def can_be_not_delivered(self) -> bool:
        return not self.required or self.may_be_not_delivered


_KEY = "the record's key: versions, corrections and links between policies, incidents and claims depend on it"
_INSURED = "the insured_key: insureds counted, one event linked across insurers, disclosure thresholds"

POLICY = (
    Field("policy_number", "identifier", True, key_scope="policy", why=_KEY, label_zh="保单号",
          description="the insurer's policy number (pseudonymized into policy_key)"),
    Field("insured_id", "identifier", True, key_scope="insured", why=_INSURED, label_zh="统一社会信用代码",
          description="the insured's unified social credit code, 18 characters with the GB 32100 check character "
                      "(pseudonymized into insured_key)"),
    Field("insured_name", "str", stored=False, label_zh="被保险人名称", description="read for nothing, stored nowhere"),
    Field("industry_code", "str", label_zh="行业代码", description="GB/T 4754 industry code ('I6510', '6510' or '65')"),
    Field("sector_code", "code", taxonomy="tax_sector", label_zh="行业类别",
          description="the insurer's sector label mapped to tax_sector (used when no industry code is given)"),
    Field("region_code", "str", True, may_be_not_delivered=True, label_zh="行政区划代码",
          why="the province segment; without it the policy's province is unknown in the marts and the regulator's "
              "province table",
          description="GB/T 2260 six-digit region code of the insured"),
    Field("annual_revenue", "revenue", label_zh="年营业收入", description="the insured's annual revenue, in the row's currency"),
    Field("employee_count", "int", label_zh="员工人数", description="the insured's head count"),
    Field("product_type", "code", True, taxonomy="tax_product_type", label_zh="产品类型",
          why="the product segment of every pricing mart and regulator table", description="tax_product_type"),
    Field("coverage_sections", "code_list", True, taxonomy="tax_coverage_section", may_be_not_delivered=True,
          label_zh="保障责任", why="the sections granted; many bordereaux carry only the product, which implies them",
          description="list of tax_coverage_section codes"),
    Field("inception_date", "date", True, label_zh="起保日期", why="earned exposure and the accident period",
          description="first day of cover"),
    Field("expiry_date", "date", True, label_zh="终保日期", why="earned exposure", description="last day of cover"),
    Field("limit_amount", "money", True, label_zh="责任限额", why="the layer priced, and paid ≤ limit at the gate",
          description="aggregate limit, in the row's currency"),
    Field("deductible", "money", label_zh="免赔额", description="deductible / retention, in the row's currency"),
    Field("written_premium", "money", True, label_zh="保费", why="loss ratios and premium statistics",
          description="written premium, in the row's currency"),
    Field("currency", "currency", True, label_zh="币种", why="every amount is converted to CNY at the month's rate",
          description="ISO 4217 code of the row's amounts (tax_currency)"),
    Field("is_standalone", "bool", label_zh="是否独立保单", description="standalone cyber policy (vs. cover embedded in another policy)"),
    Field("pilot_code", "str", shape=PILOT_CODE, label_zh="试点编号",
          description="the pilot programme the policy belongs to: a code with its year (PILOT-2024-TEL), stored in "
                      "upper case"),
    Field("risk_assessment_score", "int", label_zh="风险评分", description="pre-bind security score, 0–100"),
)

INCIDENT = (
    Field("incident_number", "identifier", True, key_scope="incident", why=_KEY, label_zh="事故编号",
          description="the insurer's incident number (pseudonymized into incident_key)"),
    Field("policy_number", "identifier", True, key_scope="policy", why=_KEY, label_zh="保单号",
          description="the policy the incident is notified under"),
    Field("insured_id", "identifier", True, key_scope="insured", why=_INSURED, label_zh="统一社会信用代码",
          description="the insured's unified social credit code"),
    Field("occurred_date", "date", True, label_zh="出险日期", why="the accident period of every claim of the incident",
          description="when the incident began"),
    Field("discovered_date", "date", label_zh="发现日期", description="when the insured discovered it"),
    Field("reported_date", "date", True, label_zh="报案日期", why="reporting lags and IBNR", description="first notice to the insurer"),
    Field("resolved_date", "date", label_zh="处置完成日期", description="when the incident was contained"),
    Field("incident_type", "code", True, taxonomy="tax_incident_type", label_zh="事故类型",
          why="frequency by type, event linking and the regulator's incident tables ('unknown' is a code)",
          description="tax_incident_type"),
    Field("attack_vector", "code", taxonomy="tax_attack_vector", label_zh="攻击途径", description="tax_attack_vector"),
    Field("cve_ids", "str_list", shape=CVE_ID, label_zh="漏洞编号",
          description="CVE identifiers exploited (CVE-2023-34362), stored in upper case"),
    Field("records_affected", "int", label_zh="受影响记录数", description="records compromised"),
    Field("data_types", "code_list", taxonomy="tax_data_type", label_zh="数据类型", description="list of tax_data_type codes"),
    Field("downtime_hours", "number", label_zh="中断时长(小时)", description="hours of interruption"),
    Field("systemic_event_ref", "str", shape=EVENT_REF, label_zh="系统性事件编号",
          description="the named campaign, CVE or vendor outage the incident belongs to: a CVE id or an event code "
                      "with its year (VENDOR-OUTAGE-2024-07), stored in upper case, the same at every insurer"),
    Field("description", "str", stored=False, label_zh="事故描述", description="free text: read for nothing, stored nowhere"),
)

CLAIM_VALUATION = (
    Field("claim_number", "identifier", True, key_scope="claim", why=_KEY, label_zh="赔案号",
          description="the insurer's claim number (pseudonymized into claim_key)"),
    Field("incident_number", "identifier", True, key_scope="incident", why=_KEY, label_zh="事故编号",
          description="the incident the claim arises from"),
    Field("policy_number", "identifier", True, key_scope="policy", why=_KEY, label_zh="保单号",
          description="the policy the claim is made under"),
    Field("coverage_section", "code", True, taxonomy="tax_coverage_section", may_be_not_delivered=True,
          label_zh="保障责任",
          why="the section a claim is paid under; a bordereau without the split gives section-level severities as unknown",
          description="tax_coverage_section"),
    Field("status", "code", True, taxonomy="tax_claim_status", label_zh="赔案状态", why="open / closed development",
          description="tax_claim_status"),
    Field("report_date", "date", True, label_zh="立案日期", why="reporting lags and development ages",
          description="when the claim was reported"),
    Field("closed_date", "date", label_zh="结案日期", description="when the claim was closed"),
    Field("valuation_date", "date", True, label_zh="评估日期", why="the development triangle's valuation axis",
          description="the date the amounts are valued at (a month-end for monthly bordereaux)"),
    Field("paid_indemnity", "money", True, label_zh="已决赔款", why="paid and incurred losses",
          description="cumulative paid indemnity, in the row's currency"),
    Field("paid_expense", "money", True, label_zh="已决理赔费用", why="paid and incurred losses (ALAE)",
          description="cumulative paid claim expense (ALAE), in the row's currency"),
    Field("case_reserve", "money", True, label_zh="未决赔款", why="incurred losses",
          description="outstanding case reserve, in the row's currency"),
    Field("recoveries", "money", label_zh="追偿金额", description="cumulative recoveries, in the row's currency"),
    Field("currency", "currency", True, label_zh="币种", why="every amount is converted to CNY at the month's rate",
          description="ISO 4217 code of the row's amounts (tax_currency)"),
    # The insurer's own incurred figure, where its layout carries one: the submission gate checks it
    # against paid_indemnity + paid_expense + case_reserve − recoveries. The marts compute incurred.
    Field("reported_incurred", "money", label_zh="已发生赔款",
          description="the insurer's own incurred figure, checked against paid + reserve − recoveries"),
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
REASON_TOO_LONG = "TOO_LONG"
REASON_INVALID_FORMAT = "INVALID_FORMAT"
REASON_IDENTITY_IN_TEXT = "IDENTITY_IN_TEXT"

# The longest delivered value of any field, in characters: a longer one is no code, number or name but a fault or
# an attack, and quarantines its row. A quarantined row keeps at most QUARANTINE_SAMPLE characters of a value.
MAX_VALUE_LENGTH = 1000
QUARANTINE_SAMPLE = 64

# The plausible window of a date: from DATE_MIN to DATE_YEARS_AHEAD years after the day of ingestion
# (LATE_DATE_YEARS_AHEAD for the dates that lie ahead by nature, such as a policy's expiry).
DATE_MIN = "1990-01-01"
DATE_YEARS_AHEAD = 5
LATE_DATE_YEARS_AHEAD = 10
LATE_DATES = frozenset({"expiry_date"})

REASON_DESCRIPTIONS = {
    REASON_MISSING: "a required field is empty",
    REASON_INVALID_DATE: "a date does not match any of the layout's date formats",
    REASON_INVALID_NUMBER: "a number or amount cannot be parsed",
    REASON_INVALID_USCC: "insured_id is not a valid unified social credit code (GB 32100 check digit)",
    REASON_INVALID_REGION: "region_code is not a six-digit GB/T 2260 code of a known province",
    REASON_DATE_ORDER: "two dates are out of order (e.g. expiry before inception)",
    REASON_NEGATIVE: "an amount that cannot be negative is negative",
    REASON_OUT_OF_RANGE: "a value is outside its allowed range (a score outside 0–100, a count below zero, a date "
                         f"before {DATE_MIN} or more than {DATE_YEARS_AHEAD} years ahead — {LATE_DATE_YEARS_AHEAD} "
                         "for an expiry date)",
    REASON_UNKNOWN_CODE: "a code maps to nothing in the layout's value map or the taxonomy",
    REASON_DUPLICATE: "the row repeats an earlier row of the same submission exactly",
    REASON_NO_SECTOR: "neither an industry code nor a sector label is given",
    REASON_AMBIGUOUS_NUMBER: "an amount reads differently under the two usual number locales (e.g. 1,234 with a "
                             "decimal comma: three decimals cannot be money), so it is not guessed",
    REASON_INCOMPLETE_PARTS: "a field computed from several source columns (sum, concat) has some parts empty",
    REASON_PARTIAL_DATE: "a date built from year / month / day parts lacks the month or the day, and the layout "
                         "rejects partial dates",
    REASON_TOO_LONG: f"a delivered value is longer than {MAX_VALUE_LENGTH} characters (the quarantine keeps only "
                     f"its first {QUARANTINE_SAMPLE})",
    REASON_INVALID_FORMAT: "a coded text value does not have its field's shape: pilot_code "
                           f"{PILOT_CODE.name} ({PILOT_CODE.example}), systemic_event_ref {EVENT_REF.name} "
                           f"({EVENT_REF.example}), each of cve_ids {CVE_ID.name} ({CVE_ID.example})",
    REASON_IDENTITY_IN_TEXT: "a stored text value carries an identity: a token shaped like a unified social credit "
                             "code, the id of an insurer (this one or another of the bureau's), or the row's own "
                             "policy, incident or claim number or insured id (the quarantine withholds the value)",
}


# The stored fields of free text (not coded through a taxonomy): each is checked for identities at ingestion.
TEXT_KINDS = frozenset({"str", "str_list"})


def stored_fields(record_type: str) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS[record_type] if f.stored)


def field_map(record_type: str) -> dict[str, Field]:
    return {f.name: f for f in FIELDS[record_type]}


def key_column(field: Field) -> str:
    """Name of the pseudonymized column that replaces an identifier field."""
    return field.name.removesuffix("_number").removesuffix("_id") + "_key"
