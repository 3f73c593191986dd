{{
    config(
        materialized='incremental',
        unique_key=['claim_key', 'valuation_date'],
        incremental_strategy='delete+insert',
    )
}}
-- The full development history: one row per claim per valuation date (latest submission for the
-- date wins), amounts in the original currency and in CNY at the valuation month's rate.
-- incurred = paid_indemnity + paid_expense + case_reserve − recoveries (in CNY: of the converted parts).
select
    claim_key,
    valuation_date,
    incident_key,
    policy_key,
    insurer_id,
    coverage_section,
    status,
    status in ('open', 'reopened') as is_open,
    report_date,
    closed_date,
    currency,
    cast(fx_rate as decimal(18, 6)) as fx_rate,
    paid_indemnity,
    paid_expense,
    case_reserve,
    recoveries,
    cast(paid_indemnity + paid_expense + case_reserve - recoveries as decimal(18, 2)) as incurred,
    paid_indemnity_cny,
    paid_expense_cny,
    case_reserve_cny,
    recoveries_cny,
    cast(paid_indemnity_cny + paid_expense_cny as decimal(18, 2)) as paid_cny,
    cast(paid_indemnity_cny + paid_expense_cny + case_reserve_cny - recoveries_cny as decimal(18, 2)) as incurred_cny,
    submission_id,
    ingested_at,
    '{{ invocation_id }}' as loaded_by_invocation
from {{ ref('int_claim_valuations__deduplicated') }}
{{ only_new_submissions() }}
