-- Loss development triangles: for every accident period (year, and quarter) and development age
-- (months from the start of the accident period to an evaluation date: 12, 24, … for years, 3, 6, …
-- for quarters, up to the data cut-off), the cumulative paid and incurred (CNY), reported and closed
-- claim counts of the claims that occurred in the period, each claim at its latest valuation on or
-- before the evaluation date (a claim not yet reported counts zero; a cell appears once one claim of
-- the period is reported). Per segment (CUBE; 'all' = rolled up).
with claims as (
    {{ segmented_claims(['claim_key', 'occurred_date', 'insurer_id', 'insured_key']) }}
    where claims.occurred_date is not null
),

valuations as (
    select
        claim_key,
        valuation_date,
        lead(valuation_date) over (partition by claim_key order by valuation_date) as next_valuation_date,
        is_open,
        paid_cny,
        incurred_cny
    from {{ ref('fct_claim_valuations') }}
),

cutoff as (
    select max(valuation_date) as cutoff_date from {{ ref('fct_claim_valuations') }}
),

grains as (
    select 'year' as accident_period_type, 12 as step_months
    union all
    select 'quarter', 3
),

claim_periods as (
    select
        claims.*,
        grains.accident_period_type,
        grains.step_months,
        case when grains.accident_period_type = 'year'
            then cast({{ dbt.date_trunc('year', 'claims.occurred_date') }} as date)
            else cast({{ dbt.date_trunc('quarter', 'claims.occurred_date') }} as date)
        end as accident_period_start
    from claims cross join grains
),

evaluations as (
    select
        claim_periods.*,
        dates.date_day as evaluation_date,
        {{ dbt.datediff('claim_periods.accident_period_start', 'dates.date_day', 'month') }} + 1 as development_age_months
    from claim_periods
    inner join {{ ref('dim_date') }} as dates
        on dates.is_month_end
        and dates.date_day >= claim_periods.accident_period_start
    cross join cutoff
    where dates.date_day <= cutoff.cutoff_date
        and ({{ dbt.datediff('claim_periods.accident_period_start', 'dates.date_day', 'month') }} + 1) % claim_periods.step_months = 0
),

states as (
    select
        evaluations.*,
        valuations.claim_key is not null as is_reported,
        coalesce(not valuations.is_open, false) as is_closed,
        coalesce(valuations.paid_cny, 0) as paid_cny,
        coalesce(valuations.incurred_cny, 0) as incurred_cny
    from evaluations
    left join valuations
        on valuations.claim_key = evaluations.claim_key
        and valuations.valuation_date <= evaluations.evaluation_date
        and (valuations.next_valuation_date is null or valuations.next_valuation_date > evaluations.evaluation_date)
),

reported as (
    select *, abs(incurred_cny) as weight from states where is_reported
),

{{ cell_contributors('contributors', 'reported', ['accident_period_type', 'accident_period_start', 'development_age_months', 'evaluation_date'], 'weight') }}

cells as (
    select
        accident_period_type,
        accident_period_start,
        development_age_months,
        evaluation_date,
        {{ segment_columns() }}
        cast(sum(paid_cny) as decimal(20, 2)) as paid_cny,
        cast(sum(incurred_cny) as decimal(20, 2)) as incurred_cny,
        cast(sum(case when is_reported then 1 else 0 end) as integer) as reported_claims,
        cast(sum(case when is_closed then 1 else 0 end) as integer) as closed_claims
    from states
    group by accident_period_type, accident_period_start, development_age_months, evaluation_date, {{ segment_cube() }}
    -- A cell exists from the first age at which a claim of the period (in the segment) is reported, as in
    -- the chainladder library: an accident period with nothing reported yet has no development base.
    having sum(case when is_reported then 1 else 0 end) > 0
)

-- cell_* say who is behind the cell (the reported claims; internal, not published).
select
    cells.accident_period_type,
    cells.accident_period_start,
    cast(cells.development_age_months as integer) as development_age_months,
    cells.evaluation_date,
    {% for d in segment_dimensions() %}cells.{{ d }},
    {% endfor -%}
    cells.paid_cny,
    cells.incurred_cny,
    cells.reported_claims,
    cells.closed_claims,
    {{ cell_status('contributors') }} as disclosure_status,
    cast(contributors.cell_insureds as integer) as cell_insureds,
    cast(contributors.cell_insurers as integer) as cell_insurers,
    contributors.cell_top_share
from cells
left join contributors
    using (accident_period_type, accident_period_start, development_age_months, evaluation_date,
           {{ segment_dimensions() | join(', ') }})
