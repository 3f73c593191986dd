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
    valuations.claim_key,
    valuations.valuation_date,
    valuations.incident_key,
    valuations.policy_key,
    valuations.insurer_id,
    valuations.coverage_section,
    valuations.status,
    statuses.is_open,
    valuations.report_date,
    valuations.closed_date,
    {{ month_of('valuations.report_date') }} as report_month,
    {{ month_of('valuations.closed_date') }} as closed_month,
    valuations.currency,
    cast(valuations.fx_rate as decimal(18, 6)) as fx_rate,
    valuations.paid_indemnity,
    valuations.paid_expense,
    valuations.case_reserve,
    valuations.recoveries,
    cast(valuations.paid_indemnity + valuations.paid_expense + valuations.case_reserve - valuations.recoveries as decimal(18, 2)) as incurred,
    valuations.paid_indemnity_cny,
    valuations.paid_expense_cny,
    valuations.case_reserve_cny,
    valuations.recoveries_cny,
    cast(valuations.paid_indemnity_cny + valuations.paid_expense_cny as decimal(18, 2)) as paid_cny,
    cast(valuations.paid_indemnity_cny + valuations.paid_expense_cny + valuations.case_reserve_cny - valuations.recoveries_cny as decimal(18, 2)) as incurred_cny,
    valuations.submission_id,
    valuations.ingested_at,
    valuations.changed_at,
    '{{ invocation_id }}' as loaded_by_invocation
from {{ ref('int_claim_valuations__deduplicated') }} as valuations
left join {{ ref('tax_claim_status') }} as statuses on valuations.status = statuses.status
{{ only_new_submissions('changed_at', qualifier='valuations') }}
