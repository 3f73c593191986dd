-- Does the pre-bind security score separate risks? Per risk-score band and sector ('all' = rolled
-- up): earned exposure to the data cut-off (policy-years = earned days / 365), claims of those
-- policies, claim frequency, severity (mean and median incurred, CNY) and the relativities of
-- frequency and mean severity to all bands of the same sector (1 = no lift).
with cutoff as (
    select max(valuation_date) as cutoff_date from {{ ref('fct_claim_valuations') }}
),

policies as (
    select
        policies.policy_key,
        policies.insurer_id,
        policies.insured_key,
        coalesce(policies.risk_score_band, 'unscored') as risk_score_band,
        coalesce(policies.sector_code, 'unknown') as sector_code,
        greatest(
            {{ dbt.datediff('policies.inception_date',
                'least(policies.expiry_date, ' ~ dbt.dateadd('day', 1, 'cutoff.cutoff_date') ~ ')', 'day') }},
            0
        ) as earned_days
    from {{ ref('fct_policies') }} as policies
    cross join cutoff
),

claims as (
    select
        policies.risk_score_band, policies.sector_code, claims.incurred_cny, claims.insurer_id,
        claims.insured_key, abs(claims.incurred_cny) as weight
    from {{ ref('fct_claims') }} as claims
    inner join policies on policies.policy_key = claims.policy_key
),

{{ cell_contributors('policy_contributors', 'policies', [], 'earned_days', ['risk_score_band', 'sector_code']) }}

{{ cell_contributors('claim_contributors', 'claims', [], 'weight', ['risk_score_band', 'sector_code']) }}

exposure as (
    select
        case when grouping(risk_score_band) = 1 then 'all' else risk_score_band end as risk_score_band,
        case when grouping(sector_code) = 1 then 'all' else sector_code end as sector_code,
        count(*) as policies,
        sum(earned_days) / 365.0 as exposure_years
    from policies
    group by cube(risk_score_band, sector_code)
),

losses as (
    select
        case when grouping(risk_score_band) = 1 then 'all' else risk_score_band end as risk_score_band,
        case when grouping(sector_code) = 1 then 'all' else sector_code end as sector_code,
        count(*) as claims,
        avg(cast(incurred_cny as double)) as severity_mean,
        {{ quantile_of('cast(incurred_cny as double)', 0.5) }} as severity_median
    from claims
    group by cube(risk_score_band, sector_code)
),

bands as (
    select
        exposure.risk_score_band,
        exposure.sector_code,
        exposure.policies,
        exposure.exposure_years,
        coalesce(losses.claims, 0) as claims,
        coalesce(losses.claims, 0) / nullif(exposure.exposure_years, 0) as claim_frequency,
        losses.severity_mean,
        losses.severity_median
    from exposure
    left join losses using (risk_score_band, sector_code)
)

select
    bands.risk_score_band,
    bands.sector_code,
    cast(bands.policies as integer) as policies,
    cast(bands.exposure_years as double) as exposure_years,
    cast(bands.claims as integer) as claims,
    bands.claim_frequency,
    bands.severity_mean,
    bands.severity_median,
    bands.claim_frequency / nullif(overall.claim_frequency, 0) as frequency_relativity,
    bands.severity_mean / nullif(overall.severity_mean, 0) as severity_relativity,
    -- The policies' population (exposure) and the claims' (no claim: nothing to hide).
    {{ cell_status('policy_contributors') }} as disclosure_status,
    case when bands.claims = 0 then 'published' else {{ cell_status('claim_contributors') }} end
        as claims_disclosure_status
from bands
inner join bands as overall
    on overall.sector_code = bands.sector_code and overall.risk_score_band = 'all'
left join policy_contributors
    on policy_contributors.risk_score_band = bands.risk_score_band and policy_contributors.sector_code = bands.sector_code
left join claim_contributors
    on claim_contributors.risk_score_band = bands.risk_score_band and claim_contributors.sector_code = bands.sector_code
