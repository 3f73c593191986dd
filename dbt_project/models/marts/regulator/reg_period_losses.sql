-- The regulator pack's loss atoms per period: one row per period (reg_periods) and claim or incident
-- whose incident occurred in it (accident-period basis; undated claims are in no period), with the
-- pack's dimensions and, for a claim, paid, incurred, the reporting lag and the claim size band
-- (seed tax_claim_size_band: the first band, in order, whose upper bound the incurred does not exceed).
with bands as (
    select
        claim_size_band,
        upper_bound,
        lag(upper_bound) over (order by sort_order) as lower_bound
    from {{ ref('tax_claim_size_band') }}
),

claims as (
    select
        claims.*,
        bands.claim_size_band
    from {{ ref('reg_claims') }} as claims
    left join bands
        on (bands.lower_bound is null or claims.incurred_cny > bands.lower_bound)
        and (bands.upper_bound is null or claims.incurred_cny <= bands.upper_bound)
),

records as (
    select
        'claim' as record_kind,
        claim_key as record_key,
        insurer_id,
        insured_key,
        occurred_date,
        incident_type,
        sector_code,
        product_type,
        province_code,
        pilot_programme,
        enterprise_size,
        claim_size_band,
        paid_cny,
        incurred_cny,
        report_lag_days
    from claims

    union all

    select
        'incident' as record_kind,
        incident_key as record_key,
        insurer_id,
        insured_key,
        occurred_date,
        incident_type,
        sector_code,
        product_type,
        province_code,
        pilot_programme,
        enterprise_size,
        cast(null as {{ dbt.type_string() }}) as claim_size_band,
        cast(null as decimal(18, 2)) as paid_cny,
        cast(null as decimal(18, 2)) as incurred_cny,
        cast(null as integer) as report_lag_days
    from {{ ref('reg_incidents') }}
)

select
    periods.period_id,
    records.record_kind,
    records.record_key,
    records.insurer_id,
    records.insured_key,
    records.incident_type,
    records.sector_code as sector,
    records.product_type,
    records.province_code as province,
    records.pilot_programme as pilot,
    records.enterprise_size as size,
    records.claim_size_band as severity_band,
    records.paid_cny,
    records.incurred_cny,
    records.report_lag_days
from records
inner join {{ ref('reg_periods') }} as periods
    on records.occurred_date between periods.start_date and periods.end_date
