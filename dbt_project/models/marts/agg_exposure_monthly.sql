-- Earned exposure and premium per calendar month and segment. A policy term covers the days from
-- inception (included) to expiry (excluded); its earned days in a month are the overlap with the
-- month. Earned exposure in policy-years = earned days / 365; earned premium = written premium (CNY)
-- × earned days / term days, rounded to the fen per policy and month. Written premium and the
-- policies written count in the month of inception; policies in force = terms with any earned day in
-- the month. Months run from the first inception to the data cut-off (the latest valuation date).
with policies as (
    select
        policies.policy_key,
        policies.inception_date,
        policies.expiry_date,
        policies.written_premium_cny,
        {{ dbt.datediff('policies.inception_date', 'policies.expiry_date', 'day') }} as term_days,
        {{ policy_segment('policies') }}
    from {{ ref('fct_policies') }} as policies
    where policies.expiry_date > policies.inception_date
),

cutoff as (
    select max(valuation_date) as cutoff_date from {{ ref('fct_claim_valuations') }}
),

months as (
    select month_start, max(date_day) as month_end
    from {{ ref('dim_date') }}
    cross join cutoff
    where date_day >= (select min(inception_date) from policies)
        and month_start <= cutoff.cutoff_date
    group by month_start
),

earned as (
    select
        policies.*,
        months.month_start,
        {{ dbt.datediff(
            'greatest(policies.inception_date, months.month_start)',
            'least(policies.expiry_date, ' ~ dbt.dateadd('day', 1, 'months.month_end') ~ ')',
            'day') }} as earned_days
    from policies
    inner join months
        on policies.inception_date <= months.month_end
        and policies.expiry_date > months.month_start
)

select
    month_start,
    {{ segment_columns() }}
    cast(sum(earned_days) / 365.0 as double) as earned_exposure_years,
    cast(sum(round(cast(written_premium_cny as decimal(38, 6)) * earned_days / term_days, 2)) as decimal(20, 2))
        as earned_premium_cny,
    cast(sum(case when {{ month_of('inception_date') }} = month_start then written_premium_cny else 0 end)
        as decimal(20, 2)) as written_premium_cny,
    cast(sum(case when {{ month_of('inception_date') }} = month_start then 1 else 0 end) as integer) as policies_written,
    cast(count(*) as integer) as policies_in_force
from earned
where earned_days > 0
group by month_start, {{ segment_cube() }}
