-- The regulator pack's periods: every calendar quarter and every year to date (Q1 to the quarter) of
-- each year the data touch, from the first policy month or occurrence to the data cut-off (the latest
-- valuation). Whole years, so a pack can protect its year's earlier quarters, data or not.
with years as (
    select
        min(first_year) as first_year,
        max(last_year) as last_year
    from (
        select min(extract(year from month_start)) as first_year, max(extract(year from month_start)) as last_year
        from {{ ref('reg_policy_months') }}
        union all
        select min(extract(year from occurred_date)), max(extract(year from occurred_date))
        from {{ ref('reg_incidents') }}
        union all
        select min(extract(year from occurred_date)), max(extract(year from occurred_date))
        from {{ ref('reg_claims') }}
        union all
        select null, max(extract(year from valuation_date))
        from {{ ref('fct_claim_valuations') }}
    ) as bounds
),

quarters as (
    select
        dates.year,
        dates.quarter,
        min(dates.date_day) as start_date,
        max(dates.date_day) as end_date
    from {{ ref('dim_date') }} as dates
    inner join years on dates.year between years.first_year and years.last_year
    group by dates.year, dates.quarter
)

select
    cast(year as {{ dbt.type_string() }}) || 'Q' || cast(quarter as {{ dbt.type_string() }}) as period_id,
    'quarter' as period_kind,
    cast(year as integer) as year,
    cast(quarter as integer) as quarter,
    start_date,
    end_date
from quarters

union all

select
    cast(year as {{ dbt.type_string() }}) || 'Q1-Q' || cast(quarter as {{ dbt.type_string() }}) as period_id,
    'ytd' as period_kind,
    cast(year as integer) as year,
    cast(quarter as integer) as quarter,
    cast({{ dbt.date_trunc('year', 'start_date') }} as date) as start_date,
    end_date
from quarters
