{#- Building blocks shared by the pricing marts. -#}

{#- Claims with the segment of their policy ('unknown' when the policy is not in the database). -#}
{% macro segmented_claims(columns) -%}
    select
        {% for c in columns %}claims.{{ c }},
        {% endfor -%}
        {{ policy_segment('policies') }}
    from {{ ref('fct_claims') }} as claims
    left join {{ ref('fct_policies') }} as policies on policies.policy_key = claims.policy_key
{%- endmacro %}

{#- agg_loss_triangles in long form: one row per cell and measure (paid, incurred) with its value and
    the cell's disclosure status. -#}
{% macro triangle_cells() -%}
    {%- for measure in ['paid', 'incurred'] %}
    select
        accident_period_type, accident_period_start, development_age_months,
        {{ segment_dimensions() | join(', ') }}, '{{ measure }}' as measure, {{ measure }}_cny as value,
        disclosure_status
    from {{ ref('agg_loss_triangles') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Mean, the median, p90 and p99 (interpolated, as doubles) as one list <prefix>_quantiles (unpack
    with severity_quantiles), and max of an amount, columns named <prefix>_…. One quantile state per
    group instead of three: under a segment cube this is most of the model's memory. -#}
{% macro severity_stats(amount, prefix) -%}
    avg(cast({{ amount }} as double)) as {{ prefix }}_mean,
    {{ quantiles_of('cast(' ~ amount ~ ' as double)', [0.5, 0.9, 0.99]) }} as {{ prefix }}_quantiles,
    max({{ amount }}) as {{ prefix }}_max
{%- endmacro %}

{#- <prefix>_median, _p90, _p99 from the list severity_stats made, of relation `source`. -#}
{% macro severity_quantiles(source, prefix) -%}
    {{ list_element(source ~ '.' ~ prefix ~ '_quantiles', 1) }} as {{ prefix }}_median,
    {{ list_element(source ~ '.' ~ prefix ~ '_quantiles', 2) }} as {{ prefix }}_p90,
    {{ list_element(source ~ '.' ~ prefix ~ '_quantiles', 3) }} as {{ prefix }}_p99,
{%- endmacro %}

{#- The earned policy-months behind agg_exposure_monthly (and the yearly contributors of the pricing
    marts' exposure figures): CTEs policies, cutoff, months, earned and earned_rows — one row per
    policy and month with an earned day (earned_days, earned_premium of macro earned_premium, the policy's
    segment in `dimensions` (default the pricing segment), insurer_id, insured_key) — each followed by a
    comma. -#}
{% macro earned_policy_months(dimensions=none) -%}
policies as (
    select
        policies.policy_key,
        policies.inception_date,
        policies.expiry_date,
        policies.written_premium_cny,
        policies.insurer_id,
        policies.insured_key,
        {{ dbt.datediff('policies.inception_date', 'policies.expiry_date', 'day') }} as term_days,
        {{ policy_segment('policies', dimensions) }}
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
),

earned_rows as (
    select
        *,
        {{ earned_premium('written_premium_cny', 'earned_days', 'term_days') }} as earned_premium
    from earned
    where earned_days > 0
),
{%- endmacro %}
