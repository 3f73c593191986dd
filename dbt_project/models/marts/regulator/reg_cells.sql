-- The regulator pack's figures: one row per period (reg_periods), cut (var regulator_pack_cuts) and
-- cell of the cut, margins included (row_code or column_code 'total'). Each cut is a GROUPING SETS
-- aggregation of the period atoms, so a margin is computed from the same rows as its cells (distinct
-- insureds and quantiles included), never added up from rounded cells. A figure group is null where
-- the cell has no atoms of it (exposure and loss figures are kept apart: disclosure control protects
-- them separately), and on a cut that cannot carry it: the exposure figures need the policy's
-- dimensions only, the incident count no claim dimension. Every period's grand total is present,
-- with zero counts and sums when the period has no atoms.
{%- set cuts = pack_cuts() %}

with periods as (
    select period_id from {{ ref('reg_periods') }}
),

parts as (
    {%- for cut in cuts %}
    {%- set exposure = cut | reject('in', pack_policy_dimensions()) | list | length == 0 %}
    {%- set incidents = cut | reject('in', pack_incident_dimensions()) | list | length == 0 %}
    {%- if exposure %}
    select * from (
        select
            periods.period_id,
            {{ pack_cell_keys(cut) }},
            count(atoms.policy_key) as policies_in_force,
            count(distinct atoms.insured_key) as insureds,
            coalesce(sum(atoms.earned_days), 0) as earned_days,
            coalesce(sum(atoms.written_premium_cny), 0) as written_premium_cny,
            coalesce(sum(atoms.earned_premium_cny), 0) as earned_premium_cny,
            cast(null as bigint) as incidents,
            cast(null as bigint) as claims,
            cast(null as decimal(38, 2)) as paid_cny,
            cast(null as decimal(38, 2)) as incurred_cny,
            cast(null as decimal(38, 2)) as severity_median_cny,
            cast(null as decimal(38, 2)) as severity_p90_cny,
            cast(null as decimal(38, 1)) as report_lag_median_days,
            cast(null as bigint) as loss_insureds
        from periods
        left join {{ ref('reg_period_policies') }} as atoms on atoms.period_id = periods.period_id
        group by {{ pack_grouping_sets(cut, ['periods.period_id']) }}
    ) as exposure_cells
    where row_code is not null and column_code is not null
    union all
    {%- endif %}
    select
        period_id, cut_id, row_dim, column_dim, row_code, column_code,
        null, null, null, null, null, null,
        claims, paid_cny, incurred_cny,
        {{ exact_quantile('severities', '0.5', 2) }},
        {{ exact_quantile('severities', '0.9', 2) }},
        {{ exact_quantile('report_lags', '0.5', 1) }},
        null
    from (
        select
            periods.period_id,
            {{ pack_cell_keys(cut) }},
            count(atoms.record_key) as claims,
            coalesce(sum(atoms.paid_cny), 0) as paid_cny,
            coalesce(sum(atoms.incurred_cny), 0) as incurred_cny,
            {{ sorted_list_of('atoms.incurred_cny', 'atoms.incurred_cny > 0') }} as severities,
            {{ sorted_list_of('atoms.report_lag_days', 'atoms.report_lag_days is not null') }} as report_lags
        from periods
        left join {{ ref('reg_period_losses') }} as atoms
            on atoms.period_id = periods.period_id and atoms.record_kind = 'claim'
        group by {{ pack_grouping_sets(cut, ['periods.period_id']) }}
    ) as claim_cells
    where row_code is not null and column_code is not null
    union all
    select * from (
        select
            periods.period_id,
            {{ pack_cell_keys(cut) }},
            null, null, null, null, null,
            {% if incidents %}count(case when atoms.record_kind = 'incident' then atoms.record_key end){% else %}null{% endif %},
            null, null, null, null, null, null,
            count(distinct atoms.insured_key)
        from periods
        left join {{ ref('reg_period_losses') }} as atoms
            on atoms.period_id = periods.period_id
            and atoms.record_kind in ('claim'{% if incidents %}, 'incident'{% endif %})
        group by {{ pack_grouping_sets(cut, ['periods.period_id']) }}
    ) as reported_cells
    where row_code is not null and column_code is not null
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

cells as (
    select
        period_id,
        cut_id,
        row_dim,
        column_dim,
        row_code,
        column_code,
        max(policies_in_force) as policies_in_force,
        max(insureds) as insureds,
        max(earned_days) as earned_days,
        max(written_premium_cny) as written_premium_cny,
        max(earned_premium_cny) as earned_premium_cny,
        max(incidents) as incidents,
        max(claims) as claims,
        max(paid_cny) as paid_cny,
        max(incurred_cny) as incurred_cny,
        max(severity_median_cny) as severity_median_cny,
        max(severity_p90_cny) as severity_p90_cny,
        max(report_lag_median_days) as report_lag_median_days,
        max(loss_insureds) as loss_insureds
    from parts
    group by period_id, cut_id, row_dim, column_dim, row_code, column_code
),

figures as (
    select
        cells.*,
        case when earned_days is not null then
            {{ div_half_up('earned_days * 100', '365', 0) }}
        end as exposure_hundredths
    from cells
)

select
    period_id,
    cut_id,
    row_dim,
    column_dim,
    row_code,
    column_code,
    cast(policies_in_force as bigint) as policies_in_force,
    cast(insureds as bigint) as insureds,
    cast(earned_days as bigint) as earned_days,
    cast(exposure_hundredths * 0.01 as decimal(38, 2)) as exposure_years,
    cast(written_premium_cny as decimal(38, 2)) as written_premium_cny,
    cast(earned_premium_cny as decimal(38, 2)) as earned_premium_cny,
    cast(incidents as bigint) as incidents,
    cast(claims as bigint) as claims,
    cast(paid_cny as decimal(38, 2)) as paid_cny,
    cast(incurred_cny as decimal(38, 2)) as incurred_cny,
    cast(severity_median_cny as decimal(38, 2)) as severity_median_cny,
    cast(severity_p90_cny as decimal(38, 2)) as severity_p90_cny,
    cast(report_lag_median_days as decimal(38, 1)) as report_lag_median_days,
    cast(loss_insureds as bigint) as loss_insureds,
    case when earned_premium_cny <> 0 then
        {{ div_half_up('cast(round(coalesce(incurred_cny, 0) * 100) as bigint)', 'cast(round(earned_premium_cny * 100) as bigint)', 4) }}
    end as loss_ratio,
    case when exposure_hundredths <> 0 then
        {{ div_half_up('coalesce(claims, 0) * 10000', 'exposure_hundredths', 2) }}
    end as claim_frequency
from figures
