-- Chain-ladder projection per accident period and segment, for paid and incurred: the latest
-- cumulative value (at the latest development age observed by the data cut-off), the cumulative
-- development factor to ultimate at that age (agg_development_factors; the tail alone at the oldest
-- age), ultimate = latest × CDF and IBNR = ultimate − latest.
with cells as (
    {{ triangle_cells() }}
),

latest as (
    {{ first_row_per(
        'cells',
        ['accident_period_type', 'accident_period_start'] + segment_dimensions() + ['measure'],
        'development_age_months desc') }}
)

select
    latest.accident_period_type,
    latest.accident_period_start,
    {% for d in segment_dimensions() %}latest.{{ d }},
    {% endfor -%}
    latest.measure,
    latest.development_age_months as latest_age_months,
    cast(latest.value as decimal(20, 2)) as latest_cny,
    coalesce(factors.cdf_to_ultimate, cast({{ var('chain_ladder_tail') }} as double)) as cdf_to_ultimate,
    cast(latest.value * coalesce(factors.cdf_to_ultimate, cast({{ var('chain_ladder_tail') }} as double))
        as decimal(26, 6)) as ultimate_cny,
    cast(latest.value * coalesce(factors.cdf_to_ultimate, cast({{ var('chain_ladder_tail') }} as double)) - latest.value
        as decimal(26, 6)) as ibnr_cny,
    -- The latest cumulative is the triangle's cell at the latest age: its disclosure status.
    latest.disclosure_status
from latest
left join {{ ref('agg_development_factors') }} as factors
    on factors.accident_period_type = latest.accident_period_type
    and factors.measure = latest.measure
    and factors.development_age_months = latest.development_age_months
    {% for d in segment_dimensions() %}and factors.{{ d }} = latest.{{ d }}
    {% endfor %}
