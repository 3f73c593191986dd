-- Chain-ladder development factors of agg_loss_triangles, for paid and incurred, per accident-period
-- type and segment. Age-to-age factor from age k: volume-weighted, the sum of C(k + step) over the
-- sum of C(k), across the accident periods with a non-zero value at both ages (a zero carries no
-- development information; the chainladder library treats it as missing too). No such period: no
-- factor row, and the factor counts as 1 in the products. Cumulative development factor to ultimate at
-- age k: the tail (var chain_ladder_tail, 1.0 = none) × the product of the factors from age k on.
with cells as (
    {{ triangle_cells() }}
),

steps as (
    select 'year' as accident_period_type, 12 as step_months
    union all
    select 'quarter', 3
),

pairs as (
    select
        current_age.accident_period_type,
        {% for d in segment_dimensions() %}current_age.{{ d }},
        {% endfor -%}
        current_age.measure,
        current_age.development_age_months,
        current_age.development_age_months + steps.step_months as next_age_months,
        sum(next_age.value) as next_total,
        sum(current_age.value) as base_total,
        count(*) as n_accident_periods,
        -- The base covers the claims of every period summed: it meets the rule where one of its
        -- cells does (the rule's counts only grow with the union).
        bool_or(current_age.disclosure_status = 'published') as any_cell_published
    from cells as current_age
    inner join steps on steps.accident_period_type = current_age.accident_period_type
    inner join cells as next_age
        on next_age.accident_period_type = current_age.accident_period_type
        and next_age.accident_period_start = current_age.accident_period_start
        and next_age.measure = current_age.measure
        and next_age.development_age_months = current_age.development_age_months + steps.step_months
        {% for d in segment_dimensions() %}and next_age.{{ d }} = current_age.{{ d }}
        {% endfor %}
    -- A period with nothing at either age carries no development information (as in chainladder).
    where current_age.value <> 0 and next_age.value <> 0
    group by
        current_age.accident_period_type,
        {% for d in segment_dimensions() %}current_age.{{ d }},
        {% endfor -%}
        current_age.measure,
        current_age.development_age_months,
        current_age.development_age_months + steps.step_months
),

factors as (
    select
        *,
        case when base_total <> 0 then cast(next_total as double) / cast(base_total as double) end as age_to_age_factor
    from pairs
)

select
    factors.accident_period_type,
    {% for d in segment_dimensions() %}factors.{{ d }},
    {% endfor -%}
    factors.measure,
    cast(factors.development_age_months as integer) as development_age_months,
    cast(factors.next_age_months as integer) as next_age_months,
    factors.age_to_age_factor,
    cast({{ var('chain_ladder_tail') }} as double)
        * {{ product_of('coalesce(later.age_to_age_factor, 1.0)') }} as cdf_to_ultimate,
    cast(factors.base_total as decimal(20, 2)) as base_cny,
    cast(factors.next_total as decimal(20, 2)) as next_cny,
    cast(factors.n_accident_periods as integer) as n_accident_periods,
    case when factors.any_cell_published then 'published' else 'few_insureds' end as disclosure_status
from factors
inner join factors as later
    on later.accident_period_type = factors.accident_period_type
    and later.measure = factors.measure
    and later.development_age_months >= factors.development_age_months
    {% for d in segment_dimensions() %}and later.{{ d }} = factors.{{ d }}
    {% endfor %}
group by
    factors.accident_period_type,
    {% for d in segment_dimensions() %}factors.{{ d }},
    {% endfor -%}
    factors.measure,
    factors.development_age_months,
    factors.next_age_months,
    factors.age_to_age_factor,
    factors.base_total,
    factors.next_total,
    factors.n_accident_periods,
    factors.any_cell_published
