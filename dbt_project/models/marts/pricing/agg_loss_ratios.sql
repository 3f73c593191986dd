-- Loss ratios per accident year and segment: incurred to date (latest valuations, claims by accident
-- year) and chain-ladder projected ultimate incurred (agg_chain_ladder, yearly, incurred) over
-- earned premium of the same calendar year (agg_exposure_monthly).
with premium as (
    select
        cast(extract(year from month_start) as integer) as accident_year,
        {{ segment_dimensions() | join(', ') }},
        sum(earned_premium_cny) as earned_premium_cny,
        sum(earned_exposure_years) as exposure_years
    from {{ ref('agg_exposure_monthly') }}
    group by cast(extract(year from month_start) as integer), {{ segment_dimensions() | join(', ') }}
),

losses as (
    select
        accident_year,
        {{ segment_dimensions() | join(', ') }},
        claims,
        incurred_cny,
        disclosure_status
    from {{ ref('agg_frequency_severity') }}
),

ultimates as (
    select
        cast(extract(year from accident_period_start) as integer) as accident_year,
        {{ segment_dimensions() | join(', ') }},
        ultimate_cny,
        disclosure_status
    from {{ ref('agg_chain_ladder') }}
    where accident_period_type = 'year' and measure = 'incurred'
)

select
    premium.accident_year,
    {% for d in segment_dimensions() %}premium.{{ d }},
    {% endfor -%}
    cast(premium.earned_premium_cny as decimal(20, 2)) as earned_premium_cny,
    premium.exposure_years,
    cast(coalesce(losses.claims, 0) as integer) as claims,
    cast(coalesce(losses.incurred_cny, 0) as decimal(20, 2)) as incurred_cny,
    cast(coalesce(ultimates.ultimate_cny, 0) as decimal(26, 6)) as ultimate_incurred_cny,
    cast(coalesce(losses.incurred_cny, 0) as double) / nullif(cast(premium.earned_premium_cny as double), 0)
        as incurred_loss_ratio,
    cast(coalesce(ultimates.ultimate_cny, 0) as double) / nullif(cast(premium.earned_premium_cny as double), 0)
        as ultimate_loss_ratio,
    -- The premium's population (policies earning in the year) and the claims' (as agg_frequency_severity;
    -- no claim: nothing to hide).
    coalesce(premium_contributors.disclosure_status, 'few_insureds') as disclosure_status,
    coalesce(losses.disclosure_status, 'published') as claims_disclosure_status,
    -- The projected ultimate is agg_chain_ladder's (yearly, incurred): its status.
    coalesce(ultimates.disclosure_status, 'published') as ultimate_disclosure_status
from premium
left join {{ ref('int_exposure__yearly_contributors') }} as premium_contributors
    using (accident_year, {{ segment_dimensions() | join(', ') }})
left join losses using (accident_year, {{ segment_dimensions() | join(', ') }})
left join ultimates using (accident_year, {{ segment_dimensions() | join(', ') }})
