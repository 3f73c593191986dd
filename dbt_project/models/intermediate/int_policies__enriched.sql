{{
    config(
        materialized='incremental',
        unique_key=['insurer_id', 'policy_key'],
        incremental_strategy='delete+insert',
    )
}}
-- The latest version of each policy term, with its sector (insurer label, else GB/T 4754 division),
-- size bands and SME flag, pilot flag, risk-score band, and amounts in CNY at the inception month's rate.
-- Incremental: the terms int_policies__versions re-ranked since the last run (changed_at above this
-- table's) replace their stored rows; a term's current version only changes when it is re-ranked.
with latest as (
    select * from {{ ref('int_policies__versions') }}
    where is_latest
    {%- if is_incremental() %}
        and changed_at > (select coalesce(max(changed_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- endif %}
),

divisions as (
    select
        cast(division_from as integer) as division_from,
        cast(division_to as integer) as division_to,
        sector_code
    from {{ ref('tax_gbt4754_division') }}
),

fx as (
    select rate_month, currency, cny_per_unit from {{ ref('fx_rates_monthly') }}
),

revenue_bands as (
    select * from {{ ref('tax_size_band') }} where band_type = 'revenue'
),

headcount_bands as (
    select * from {{ ref('tax_size_band') }} where band_type = 'headcount'
),

converted as (
    select
        latest.*,
        coalesce(latest.sector_label_code, divisions.sector_code) as sector_code,
        case
            when latest.sector_label_code is not null then 'insurer_label'
            when divisions.sector_code is not null then 'gbt4754_division'
        end as sector_source,
        fx.cny_per_unit as fx_rate,
        {{ to_cny('latest.limit_amount', 'fx.cny_per_unit') }} as limit_cny,
        {{ to_cny('latest.deductible', 'fx.cny_per_unit') }} as deductible_cny,
        {{ to_cny('latest.written_premium', 'fx.cny_per_unit') }} as written_premium_cny,
        cast(round(cast(latest.annual_revenue as decimal(38, 2)) * fx.cny_per_unit, 2) as decimal(22, 2)) as annual_revenue_cny
    from latest
    left join divisions
        on {{ dbt.safe_cast('latest.industry_division', api.Column.translate_type('integer')) }}
            between divisions.division_from and divisions.division_to
    left join fx
        on fx.rate_month = {{ month_of('latest.inception_date') }}
        and fx.currency = latest.currency
)

select
    converted.*,
    coalesce(revenue_bands.size_band, 'unknown') as revenue_band,
    coalesce(headcount_bands.size_band, 'unknown') as headcount_band,
    case
        when revenue_bands.is_sme is null and headcount_bands.is_sme is null then null
        else coalesce(revenue_bands.is_sme, false) or coalesce(headcount_bands.is_sme, false)
    end as is_sme,
    converted.pilot_code is not null as is_pilot,
    case
        when converted.risk_assessment_score is null then 'unscored'
        when converted.risk_assessment_score < 40 then '00-39'
        when converted.risk_assessment_score < 60 then '40-59'
        when converted.risk_assessment_score < 80 then '60-79'
        else '80-100'
    end as risk_score_band,
    {{ dbt.datediff('converted.inception_date', 'converted.expiry_date', 'day') }} as term_days
from converted
left join revenue_bands
    on converted.annual_revenue_cny >= revenue_bands.lower_bound
    and (revenue_bands.upper_bound is null or converted.annual_revenue_cny < revenue_bands.upper_bound)
left join headcount_bands
    on converted.employee_count >= headcount_bands.lower_bound
    and (headcount_bands.upper_bound is null or converted.employee_count < headcount_bands.upper_bound)
