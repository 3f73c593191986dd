{{
    config(
        materialized='incremental',
        unique_key=['insurer_id', 'claim_key', 'valuation_date'],
        incremental_strategy='delete+insert',
    )
}}
-- Exactly one row per claim per valuation date: the latest submission for that date wins.
-- Amounts are converted to CNY at the rate of the valuation month (macro to_cny: rounded to the
-- fen, half away from zero); the original currency and amounts stay beside the converted ones.
-- Incremental: only the claim valuation dates that rows admitted since the last run mention are
-- re-ranked, over all their admitted versions (so a submission released late cannot displace a
-- newer version); they replace the stored rows. A claim absent from a later submission keeps its
-- last state, because nothing deletes it. changed_at (latest admission touching the row) is the watermark.
with {{ ranked_admitted_versions(ref('stg_raw__claim_valuations'), ['insurer_id', 'claim_key', 'valuation_date']) }},

fx as (
    select rate_month, currency, cny_per_unit from {{ ref('fx_rates_monthly') }}
)

select
    ranked.insurer_id,
    ranked.claim_key,
    ranked.valuation_date,
    ranked.incident_key,
    ranked.policy_key,
    ranked.coverage_section,
    ranked.status,
    ranked.report_date,
    ranked.closed_date,
    ranked.currency,
    ranked.paid_indemnity,
    ranked.paid_expense,
    ranked.case_reserve,
    ranked.recoveries,
    fx.cny_per_unit as fx_rate,
    {{ to_cny('ranked.paid_indemnity', 'fx.cny_per_unit') }} as paid_indemnity_cny,
    {{ to_cny('ranked.paid_expense', 'fx.cny_per_unit') }} as paid_expense_cny,
    {{ to_cny('ranked.case_reserve', 'fx.cny_per_unit') }} as case_reserve_cny,
    {{ to_cny('ranked.recoveries', 'fx.cny_per_unit') }} as recoveries_cny,
    ranked.submission_id,
    ranked.source_file,
    ranked.source_row,
    ranked.ingested_at,
    ranked.changed_at,
    '{{ invocation_id }}' as loaded_by_invocation
from ranked
left join fx
    on fx.rate_month = {{ month_of('ranked.valuation_date') }}
    and fx.currency = ranked.currency
where ranked.version_rank = 1
