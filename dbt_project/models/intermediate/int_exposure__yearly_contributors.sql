{#- Who is behind the yearly exposure figures of the pricing marts (earned premium and exposure of a
    calendar year and segment, in agg_loss_ratios and agg_frequency_severity): distinct insureds and
    insurers of the policies earning in the year, the largest insurer's share of the earned premium,
    and the cell's disclosure status. -#}
with {{ earned_policy_months() }}

earned_years as (
    select *, cast(extract(year from month_start) as integer) as accident_year from earned_rows
),

{{ cell_contributors('contributors', 'earned_years', ['accident_year'], 'earned_premium') }}

years as (
    select * from contributors
)

select
    accident_year,
    {% for d in segment_dimensions() %}{{ d }},
    {% endfor -%}
    cast(cell_insureds as integer) as cell_insureds,
    cast(cell_insurers as integer) as cell_insurers,
    cell_top_share,
    {{ cell_status('years') }} as disclosure_status
from years
