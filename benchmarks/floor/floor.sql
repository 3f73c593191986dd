-- The benchmark floor: marts.fct_claim_valuations straight from the landing files, in one DuckDB script.
--
-- Run by benchmarks/floor.py, which sets these inputs first:
--   variables  file_insurer, file_ord, file_path, file_read_path, file_source  parallel lists, one entry per
--                  admitted claim-valuation file: insurer, position in the insurer's delivery (= ingestion)
--                  order, path on disk, path the reader opens (a UTF-8 copy for GBK), landing-relative name
--              files_<insurer_id>  the read paths of that insurer's files, in delivery order
--              hmac_secret (BLOB), fx_path, claim_status_path (the dbt seeds)
--   table      huanan_claims  the 赔案 sheets of the Huanan workbooks as text (calamine → Arrow), with
--                  __path (the workbook) and __row (1-based row among the sheet's non-empty rows)
-- A statement headed `-- layout: <insurer_id>` is skipped when that insurer has no admitted file.
-- Statements end with a semicolon at the end of a line (the driver splits on that).

-- A delivered value as the contract sees it: stripped of Unicode White_Space (polars' strip_chars), and
-- empty means absent. A regular expression, because DuckDB's trim() with a non-ASCII character set is
-- ten times slower.
CREATE MACRO txt(x) AS nullif(regexp_replace(CAST(x AS VARCHAR),
    '^[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+|[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+$',
    '', 'g'), '');

-- Text → Decimal(38,6) as polars casts it: [,，\s] removed (mapping.py), rounded half to even (DuckDB's
-- cast rounds half away from zero, so parse finer and round here); DuckDB reads '1_000' as a number,
-- polars does not.
CREATE MACRO dec6(t) AS
    CASE WHEN NOT contains(t, '_') THEN round_even(TRY_CAST(regexp_replace(t,
        '[,，\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]', '', 'g')
        AS DECIMAL(38, 12)), 6) END;

-- × the layout's unit multiplier, rounded half to even to the fen (polars Decimal.round); NULL when it
-- does not fit DECIMAL(18,2). Narrowing to DECIMAL(24,6) first keeps the product inside DECIMAL(38,12),
-- so a huge value fails its row instead of raising.
CREATE MACRO amount_general(t, mult) AS
    TRY_CAST(round_even(TRY_CAST(dec6(t) AS DECIMAL(24, 6)) * CAST(mult AS DECIMAL(18, 6)), 2) AS DECIMAL(18, 2));

-- The same value by a shortcut, exact where `plain` matches: a plain decimal of at most 12 integer digits
-- and no more decimals than survive the multiplier without rounding. That is nearly every delivered
-- amount, and it skips the 128-bit arithmetic and both roundings (about seven times cheaper).
CREATE MACRO amount(t, mult, plain) AS
    CASE WHEN regexp_full_match(t, plain) THEN TRY_CAST(CAST(t AS DECIMAL(18, 6)) * mult AS DECIMAL(18, 2))
         ELSE amount_general(t, mult) END;

-- The two units of the layouts: yuan (multiplier 1) and 万元 (ten thousand yuan, multiplier 10000).
CREATE MACRO yuan(t) AS amount(t, 1, '-?[0-9]{1,12}(\.[0-9]{1,2})?');

CREATE MACRO wan(t) AS amount(t, 10000, '-?[0-9]{1,12}(\.[0-9]{1,6})?');

CREATE MACRO as_date(t, fmts) AS CAST(try_strptime(t, fmts) AS DATE);

-- Nested JSON and Parquet values reach the mapping as text: floats rounded to six decimals first.
CREATE MACRO flat(x) AS
    CASE WHEN typeof(x) IN ('DOUBLE', 'FLOAT')
        THEN CAST(round(TRY_CAST(x AS DOUBLE), 6) AS VARCHAR) ELSE CAST(x AS VARCHAR) END;

-- A currency with no value map must be a taxonomy code (tax_currency), or its lower-case spelling.
SET VARIABLE currency_codes = MAP {
    'CNY': 'CNY', 'USD': 'USD', 'HKD': 'HKD', 'EUR': 'EUR', 'cny': 'CNY', 'usd': 'USD', 'hkd': 'HKD', 'eur': 'EUR'};

-- HMAC-SHA256 (RFC 2104) from sha256 over blobs: a key longer than the 64-byte block is hashed first.
SET VARIABLE hmac_block = CASE WHEN octet_length(getvariable('hmac_secret')) > 64
    THEN unhex(sha256(getvariable('hmac_secret'))) ELSE getvariable('hmac_secret') END;

SET VARIABLE hmac_block = getvariable('hmac_block') || unhex(repeat('00', 64 - octet_length(getvariable('hmac_block'))));

SET VARIABLE hmac_ipad = CAST(xor(CAST(getvariable('hmac_block') AS BIT), CAST(unhex(repeat('36', 64)) AS BIT)) AS BLOB);

SET VARIABLE hmac_opad = CAST(xor(CAST(getvariable('hmac_block') AS BIT), CAST(unhex(repeat('5c', 64)) AS BIT)) AS BLOB);

CREATE MACRO hmac_hex(msg) AS
    sha256(getvariable('hmac_opad') || unhex(sha256(getvariable('hmac_ipad') || encode(msg))));

-- Every delivered claim-valuation row of an admitted file: required fields parsed (NULL when missing,
-- unparseable or an unknown code, which all quarantine the row), optional ones kept as text beside their
-- parsed value, and whether the row repeats an earlier one of its file exactly.
CREATE TABLE landed (
    read_path VARCHAR, row_order BIGINT, is_dup BOOLEAN,
    claim_number VARCHAR, incident_number VARCHAR, policy_number VARCHAR,
    coverage_section VARCHAR, status VARCHAR,
    report_date DATE, t_closed_date VARCHAR, closed_date DATE, valuation_date DATE,
    paid_indemnity DECIMAL(18, 2), paid_expense DECIMAL(18, 2), case_reserve DECIMAL(18, 2),
    t_recoveries VARCHAR, recoveries DECIMAL(18, 2),
    currency VARCHAR
);

-- layout: changjiang_ins
-- GBK CSV (read from the driver's UTF-8 copies), Chinese headers, amounts in 万元, dates 20240305.
INSERT INTO landed BY NAME
WITH src AS (
    SELECT *, row_number() OVER () AS src_rn
    FROM read_csv(getvariable('files_changjiang_ins'), header = true, all_varchar = true, auto_type_candidates = ['VARCHAR'],
                  delim = ',', quote = '"', escape = '"', union_by_name = true, filename = true)
),
t AS (
    SELECT
        filename AS read_path,
        src_rn AS row_order,
        row_number() OVER (
            PARTITION BY filename, 赔案号, 事故编号, 保单号, 保障责任, 赔案状态, 立案日期, 结案日期, 评估日期,
                "已决赔款(万元)", "已决理赔费用(万元)", "未决赔款(万元)", "追偿金额(万元)", 币种
            ORDER BY src_rn) > 1 AS is_dup,
        txt(赔案号) AS claim_number, txt(事故编号) AS incident_number, txt(保单号) AS policy_number,
        txt(保障责任) AS cov, txt(赔案状态) AS stat, txt(立案日期) AS rep, txt(结案日期) AS clo,
        txt(评估日期) AS val, txt("已决赔款(万元)") AS pi, txt("已决理赔费用(万元)") AS pe,
        txt("未决赔款(万元)") AS cr, txt("追偿金额(万元)") AS rec, txt(币种) AS ccy
    FROM src
)
SELECT
    read_path, row_order, is_dup, claim_number, incident_number, policy_number,
    MAP {'事件响应': 'incident_response', '数据恢复': 'data_restoration', '营业中断': 'business_interruption',
         '网络勒索': 'extortion', '通知及信用监控': 'notification', '危机公关': 'crisis_communication',
         '隐私责任': 'privacy_liability', '网络安全责任': 'network_security_liability',
         '监管罚款': 'regulatory_fines', '支付卡评估': 'pci_assessments', '媒体责任': 'media_liability',
         '产品及职业责任': 'product_professional_liability'}[cov] AS coverage_section,
    MAP {'未决': 'open', '已结案': 'closed_paid', '零结案': 'closed_no_payment', '重开': 'reopened',
         '拒赔': 'denied', '撤案': 'withdrawn'}[stat] AS status,
    as_date(rep, '%Y%m%d') AS report_date, clo AS t_closed_date, as_date(clo, '%Y%m%d') AS closed_date,
    as_date(val, '%Y%m%d') AS valuation_date,
    wan(pi) AS paid_indemnity, wan(pe) AS paid_expense, wan(cr) AS case_reserve,
    rec AS t_recoveries, wan(rec) AS recoveries,
    MAP {'人民币': 'CNY', '美元': 'USD', '港币': 'HKD', '欧元': 'EUR'}[ccy] AS currency
FROM t;

-- layout: dongfang_pc
-- UTF-8 CSV, English headers, yuan, ISO dates, taxonomy currency codes.
INSERT INTO landed BY NAME
WITH src AS (
    SELECT *, row_number() OVER () AS src_rn
    FROM read_csv(getvariable('files_dongfang_pc'), header = true, all_varchar = true, auto_type_candidates = ['VARCHAR'],
                  delim = ',', quote = '"', escape = '"', union_by_name = true, filename = true)
),
t AS (
    SELECT
        filename AS read_path,
        src_rn AS row_order,
        row_number() OVER (
            PARTITION BY filename, ClaimNo, IncidentNo, PolicyNo, CoverageSection, Status, ReportDate, ClosedDate,
                ValuationDate, PaidIndemnity, PaidExpense, CaseReserve, Recoveries, Currency
            ORDER BY src_rn) > 1 AS is_dup,
        txt(ClaimNo) AS claim_number, txt(IncidentNo) AS incident_number, txt(PolicyNo) AS policy_number,
        txt(CoverageSection) AS cov, txt(Status) AS stat, txt(ReportDate) AS rep, txt(ClosedDate) AS clo,
        txt(ValuationDate) AS val, txt(PaidIndemnity) AS pi, txt(PaidExpense) AS pe, txt(CaseReserve) AS cr,
        txt(Recoveries) AS rec, txt(Currency) AS ccy
    FROM src
)
SELECT
    read_path, row_order, is_dup, claim_number, incident_number, policy_number,
    MAP {'IR': 'incident_response', 'DR': 'data_restoration', 'BI': 'business_interruption', 'EXT': 'extortion',
         'NOT': 'notification', 'CRI': 'crisis_communication', 'PRIV': 'privacy_liability',
         'NSL': 'network_security_liability', 'REG': 'regulatory_fines', 'PCI': 'pci_assessments',
         'MED': 'media_liability', 'PPL': 'product_professional_liability'}[cov] AS coverage_section,
    MAP {'OPEN': 'open', 'CLOSED': 'closed_paid', 'CLOSED-NIL': 'closed_no_payment', 'REOPENED': 'reopened',
         'DENIED': 'denied', 'WITHDRAWN': 'withdrawn'}[stat] AS status,
    as_date(rep, '%Y-%m-%d') AS report_date, clo AS t_closed_date, as_date(clo, '%Y-%m-%d') AS closed_date,
    as_date(val, '%Y-%m-%d') AS valuation_date,
    yuan(pi) AS paid_indemnity, yuan(pe) AS paid_expense, yuan(cr) AS case_reserve,
    rec AS t_recoveries, yuan(rec) AS recoveries,
    getvariable('currency_codes')[ccy] AS currency
FROM t;

-- layout: huanan_general
-- Excel sheet 赔案 under a title row, converted to text by calamine exactly as the pipeline's reader
-- does; dates arrive as '2024-03-05 00:00:00'; the currency is a constant of the layout.
INSERT INTO landed BY NAME
WITH t AS (
    SELECT
        __path AS read_path,
        __row AS row_order,
        row_number() OVER (
            PARTITION BY __path, 赔案编号, 事故号, 保险单号, 赔付责任, 案件状态, 立案日期, 结案日期, 统计日期,
                "累计已付赔款(元)", "累计已付费用(元)", "未决估损(元)", "累计追偿(元)"
            ORDER BY __row) > 1 AS is_dup,
        txt(赔案编号) AS claim_number, txt(事故号) AS incident_number, txt(保险单号) AS policy_number,
        txt(赔付责任) AS cov, txt(案件状态) AS stat, txt(立案日期) AS rep, txt(结案日期) AS clo,
        txt(统计日期) AS val, txt("累计已付赔款(元)") AS pi, txt("累计已付费用(元)") AS pe,
        txt("未决估损(元)") AS cr, txt("累计追偿(元)") AS rec
    FROM huanan_claims
)
SELECT
    read_path, row_order, is_dup, claim_number, incident_number, policy_number,
    MAP {'应急响应': 'incident_response', '数据恢复': 'data_restoration', '营业中断损失': 'business_interruption',
         '勒索赎金': 'extortion', '通知费用': 'notification', '声誉修复': 'crisis_communication',
         '隐私泄露责任': 'privacy_liability', '网络安全责任': 'network_security_liability',
         '行政罚款': 'regulatory_fines', '支付卡赔偿': 'pci_assessments', '媒体侵权责任': 'media_liability',
         '产品职业责任': 'product_professional_liability'}[cov] AS coverage_section,
    MAP {'未决': 'open', '已结案': 'closed_paid', '结案无赔付': 'closed_no_payment', '重开案': 'reopened',
         '拒赔': 'denied', '注销': 'withdrawn'}[stat] AS status,
    as_date(rep, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d', '%Y/%m/%d']) AS report_date,
    clo AS t_closed_date, as_date(clo, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d', '%Y/%m/%d']) AS closed_date,
    as_date(val, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d', '%Y/%m/%d']) AS valuation_date,
    yuan(pi) AS paid_indemnity, yuan(pe) AS paid_expense, yuan(cr) AS case_reserve,
    rec AS t_recoveries, yuan(rec) AS recoveries,
    'CNY' AS currency
FROM t;

-- layout: pearl_river_hk
-- Nested JSON Lines, amounts in USD/HKD. Leaves are read as text: a JSON number read as VARCHAR is its
-- literal, which the pipeline's float → 6-decimal → text round trip reproduces for any amount of at most
-- six decimals. Keys absent from a file are NULL, as the jsonl layout allows for optional fields.
INSERT INTO landed BY NAME
WITH src AS (
    SELECT *, row_number() OVER () AS src_rn
    FROM read_json(getvariable('files_pearl_river_hk'), format = 'newline_delimited', filename = true,
                   columns = {claim_id: 'VARCHAR', incident_ref: 'VARCHAR', policy_ref: 'VARCHAR', section: 'VARCHAR',
                              status: 'VARCHAR',
                              dates: 'STRUCT(reported VARCHAR, closed VARCHAR, valuation VARCHAR)',
                              financials: 'STRUCT(paid STRUCT(indemnity VARCHAR, expense VARCHAR), reserve VARCHAR, '
                                          'recoveries VARCHAR, currency VARCHAR)'})
),
s AS (
    SELECT filename, src_rn, claim_id, incident_ref, policy_ref, section, status,
           dates.reported AS d_rep, dates.closed AS d_clo, dates.valuation AS d_val,
           financials.paid.indemnity AS f_pi, financials.paid.expense AS f_pe, financials.reserve AS f_cr,
           financials.recoveries AS f_rec, financials.currency AS f_ccy
    FROM src
),
t AS (
    SELECT
        filename AS read_path,
        src_rn AS row_order,
        row_number() OVER (
            PARTITION BY filename, claim_id, incident_ref, policy_ref, section, status, d_rep, d_clo, d_val,
                f_pi, f_pe, f_cr, f_rec, f_ccy
            ORDER BY src_rn) > 1 AS is_dup,
        txt(claim_id) AS claim_number, txt(incident_ref) AS incident_number, txt(policy_ref) AS policy_number,
        txt(section) AS cov, txt(status) AS stat, txt(d_rep) AS rep, txt(d_clo) AS clo, txt(d_val) AS val,
        txt(f_pi) AS pi, txt(f_pe) AS pe, txt(f_cr) AS cr, txt(f_rec) AS rec, txt(f_ccy) AS ccy
    FROM s
)
SELECT
    read_path, row_order, is_dup, claim_number, incident_number, policy_number,
    MAP {'IR': 'incident_response', 'RESTORE': 'data_restoration', 'BI': 'business_interruption',
         'EXTORTION': 'extortion', 'NOTIFY': 'notification', 'PR-CRISIS': 'crisis_communication',
         'PRIVACY': 'privacy_liability', 'NETSEC': 'network_security_liability', 'REGULATORY': 'regulatory_fines',
         'PCI': 'pci_assessments', 'MEDIA': 'media_liability',
         'PROF-LIAB': 'product_professional_liability'}[cov] AS coverage_section,
    MAP {'Open': 'open', 'Closed': 'closed_paid', 'Closed-Nil': 'closed_no_payment', 'Reopened': 'reopened',
         'Declined': 'denied', 'Withdrawn': 'withdrawn'}[stat] AS status,
    as_date(rep, '%Y-%m-%d') AS report_date, clo AS t_closed_date, as_date(clo, '%Y-%m-%d') AS closed_date,
    as_date(val, '%Y-%m-%d') AS valuation_date,
    yuan(pi) AS paid_indemnity, yuan(pe) AS paid_expense, yuan(cr) AS case_reserve,
    rec AS t_recoveries, yuan(rec) AS recoveries,
    getvariable('currency_codes')[ccy] AS currency
FROM t;

-- layout: tianfu_digital
-- Typed Parquet with the insurer's own code lists; values go through text like every other layout, so
-- a date or an amount is judged by the same rules whatever its physical type.
INSERT INTO landed BY NAME
WITH t AS (
    SELECT
        filename AS read_path,
        file_row_number AS row_order,
        row_number() OVER (
            PARTITION BY filename, clm_no, inc_no, pol_no, cov_cd, clm_stat_cd, rpt_dt, cls_dt, val_dt,
                pd_ind_amt, pd_exp_amt, os_rsv_amt, rcv_amt, ccy_cd
            ORDER BY file_row_number) > 1 AS is_dup,
        txt(flat(clm_no)) AS claim_number, txt(flat(inc_no)) AS incident_number, txt(flat(pol_no)) AS policy_number,
        txt(flat(cov_cd)) AS cov, txt(flat(clm_stat_cd)) AS stat, txt(flat(rpt_dt)) AS rep,
        txt(flat(cls_dt)) AS clo, txt(flat(val_dt)) AS val, txt(flat(pd_ind_amt)) AS pi,
        txt(flat(pd_exp_amt)) AS pe, txt(flat(os_rsv_amt)) AS cr, txt(flat(rcv_amt)) AS rec,
        txt(flat(ccy_cd)) AS ccy
    FROM read_parquet(getvariable('files_tianfu_digital'), filename = true, file_row_number = true,
                      union_by_name = true)
)
SELECT
    read_path, row_order, is_dup, claim_number, incident_number, policy_number,
    MAP {'C01': 'incident_response', 'C02': 'data_restoration', 'C03': 'business_interruption', 'C04': 'extortion',
         'C05': 'notification', 'C06': 'crisis_communication', 'C07': 'privacy_liability',
         'C08': 'network_security_liability', 'C09': 'regulatory_fines', 'C10': 'pci_assessments',
         'C11': 'media_liability', 'C12': 'product_professional_liability'}[cov] AS coverage_section,
    MAP {'O': 'open', 'CP': 'closed_paid', 'CN': 'closed_no_payment', 'R': 'reopened', 'D': 'denied',
         'W': 'withdrawn'}[stat] AS status,
    as_date(rep, '%Y-%m-%d') AS report_date, clo AS t_closed_date, as_date(clo, '%Y-%m-%d') AS closed_date,
    as_date(val, '%Y-%m-%d') AS valuation_date,
    yuan(pi) AS paid_indemnity, yuan(pe) AS paid_expense, yuan(cr) AS case_reserve,
    rec AS t_recoveries, yuan(rec) AS recoveries,
    getvariable('currency_codes')[ccy] AS currency
FROM t;

-- One submission per distinct content (SHA-256 of the bytes): a file resent under another name loads
-- nothing, so only the first delivery of a content counts.
CREATE TABLE submissions AS
WITH files AS (
    SELECT
        unnest(getvariable('file_insurer')) AS insurer_id,
        unnest(getvariable('file_ord')) AS file_ord,
        unnest(getvariable('file_path')) AS path,
        unnest(getvariable('file_read_path')) AS read_path,
        unnest(getvariable('file_source')) AS source_file
)
SELECT files.*, hashes.submission_id
FROM files
JOIN (SELECT filename, sha256(content) AS submission_id FROM read_blob(getvariable('file_path'))) AS hashes
    ON hashes.filename = files.path
QUALIFY row_number() OVER (PARTITION BY submission_id ORDER BY insurer_id, file_ord) = 1;

-- The rows ingestion loads (contract.py / mapping.py): required fields present, parsed and mapped,
-- optional ones parsed when given, no negative amount, dates in order, no exact repeat within the file.
-- Then the intermediate model's rule: per claim and valuation date the latest ingested submission wins
-- (ingested_at desc, submission_id desc, source_row desc; ingestion runs in delivery order, and within a
-- file the scan position orders rows as source_row does).
CREATE TABLE latest AS
SELECT
    s.insurer_id, s.submission_id, l.claim_number, l.incident_number, l.policy_number, l.coverage_section,
    l.status, l.report_date, l.closed_date, l.valuation_date, l.paid_indemnity, l.paid_expense, l.case_reserve,
    coalesce(l.recoveries, 0) AS recoveries, l.currency
FROM landed AS l
JOIN submissions AS s USING (read_path)
WHERE NOT l.is_dup
  AND l.claim_number IS NOT NULL AND l.incident_number IS NOT NULL AND l.policy_number IS NOT NULL
  AND l.coverage_section IS NOT NULL AND l.status IS NOT NULL AND l.currency IS NOT NULL
  AND l.report_date IS NOT NULL AND l.valuation_date IS NOT NULL
  AND (l.t_closed_date IS NULL OR l.closed_date IS NOT NULL)
  AND l.paid_indemnity >= 0 AND l.paid_expense >= 0 AND l.case_reserve >= 0
  AND (l.t_recoveries IS NULL OR l.recoveries >= 0)
  AND l.valuation_date >= l.report_date
  AND (l.closed_date IS NULL OR l.closed_date >= l.report_date)
QUALIFY row_number() OVER (
    PARTITION BY s.insurer_id, l.claim_number, l.valuation_date
    ORDER BY s.file_ord DESC, s.submission_id DESC, l.row_order DESC) = 1;

-- The delivered rows are no longer needed; freeing them lowers the peak of what follows.
DROP TABLE landed;

-- Pseudonymization (pseudonymize.py): "<entity>|<insurer>|<number>" → HMAC, once per distinct identifier.
-- One table per entity, so that the optimizer knows each one's size when it joins them back.
CREATE TABLE claim_keys AS
SELECT insurer_id, number, hmac_hex('claim|' || insurer_id || '|' || number) AS hmac
FROM (SELECT DISTINCT insurer_id, claim_number AS number FROM latest);

CREATE TABLE incident_keys AS
SELECT insurer_id, number, hmac_hex('incident|' || insurer_id || '|' || number) AS hmac
FROM (SELECT DISTINCT insurer_id, incident_number AS number FROM latest);

CREATE TABLE policy_keys AS
SELECT insurer_id, number, hmac_hex('policy|' || insurer_id || '|' || number) AS hmac
FROM (SELECT DISTINCT insurer_id, policy_number AS number FROM latest);

CREATE TABLE fx AS
SELECT rate_month, currency, cny_per_unit
FROM read_csv(getvariable('fx_path'), header = true,
              types = {'rate_month': 'DATE', 'currency': 'VARCHAR', 'cny_per_unit': 'DECIMAL(18,6)'});

CREATE TABLE claim_status AS
SELECT status, is_open
FROM read_csv(getvariable('claim_status_path'), header = true, types = {'status': 'VARCHAR', 'is_open': 'BOOLEAN'});

-- The planner misjudges the joined size of `latest` and builds its hash tables on the million-row side
-- instead of the key tables; keeping the written build sides saves a third of this statement.
SET disabled_optimizers = 'build_side_probe_side';

-- The mart: FX at the valuation month's rate (macro to_cny: widen, multiply, round half away from zero
-- to the fen), incurred = paid + expense + reserve − recoveries, paid_cny and incurred_cny as sums of the
-- rounded CNY parts, is_open from the status taxonomy.
CREATE TABLE fct_claim_valuations AS
WITH v AS (
    SELECT
        ck.hmac AS claim_key,
        l.valuation_date,
        ik.hmac AS incident_key,
        pk.hmac AS policy_key,
        l.insurer_id,
        l.coverage_section,
        l.status,
        cs.is_open,
        l.report_date,
        l.closed_date,
        l.currency,
        CAST(fx.cny_per_unit AS DECIMAL(18, 6)) AS fx_rate,
        l.paid_indemnity,
        l.paid_expense,
        l.case_reserve,
        l.recoveries,
        CAST(l.paid_indemnity + l.paid_expense + l.case_reserve - l.recoveries AS DECIMAL(18, 2)) AS incurred,
        CAST(round(CAST(l.paid_indemnity AS DECIMAL(38, 2)) * fx.cny_per_unit, 2) AS DECIMAL(18, 2)) AS paid_indemnity_cny,
        CAST(round(CAST(l.paid_expense AS DECIMAL(38, 2)) * fx.cny_per_unit, 2) AS DECIMAL(18, 2)) AS paid_expense_cny,
        CAST(round(CAST(l.case_reserve AS DECIMAL(38, 2)) * fx.cny_per_unit, 2) AS DECIMAL(18, 2)) AS case_reserve_cny,
        CAST(round(CAST(l.recoveries AS DECIMAL(38, 2)) * fx.cny_per_unit, 2) AS DECIMAL(18, 2)) AS recoveries_cny,
        l.submission_id
    FROM latest AS l
    JOIN claim_keys AS ck ON ck.insurer_id = l.insurer_id AND ck.number = l.claim_number
    JOIN incident_keys AS ik ON ik.insurer_id = l.insurer_id AND ik.number = l.incident_number
    JOIN policy_keys AS pk ON pk.insurer_id = l.insurer_id AND pk.number = l.policy_number
    LEFT JOIN fx ON fx.rate_month = CAST(date_trunc('month', l.valuation_date) AS DATE) AND fx.currency = l.currency
    LEFT JOIN claim_status AS cs ON cs.status = l.status
)
SELECT
    * EXCLUDE (submission_id),
    CAST(paid_indemnity_cny + paid_expense_cny AS DECIMAL(18, 2)) AS paid_cny,
    CAST(paid_indemnity_cny + paid_expense_cny + case_reserve_cny - recoveries_cny AS DECIMAL(18, 2)) AS incurred_cny,
    submission_id
FROM v;

RESET disabled_optimizers;
