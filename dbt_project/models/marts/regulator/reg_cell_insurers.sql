-- Who contributes to each cell of reg_cells: one row per period, cut, cell (margins included) and
-- insurer with atoms in it, with the insurer's written and earned premium (null when it has no
-- policy in the cell), paid and incurred (null when it has no claim there), and whether it reports
-- a loss there (a claim, or an incident on a cut that counts incidents). Disclosure control reads
-- it for the insurer-count and dominance rules; never published.
{%- set cuts = pack_cuts() %}

with parts as (
    {%- for cut in cuts %}
    {%- set exposure = cut | reject('in', pack_policy_dimensions()) | list | length == 0 %}
    {%- set incidents = cut | reject('in', pack_incident_dimensions()) | list | length == 0 %}
    {%- if exposure %}
    select
        period_id,
        {{ pack_cell_keys(cut) }},
        insurer_id,
        sum(written_premium_cny) as written_premium_cny,
        sum(earned_premium_cny) as earned_premium_cny,
        cast(null as decimal(38, 2)) as paid_cny,
        cast(null as decimal(38, 2)) as incurred_cny,
        false as reports_loss
    from {{ ref('reg_period_policies') }}
    group by {{ pack_grouping_sets(cut, ['period_id', 'insurer_id']) }}
    union all
    {%- endif %}
    select
        period_id,
        {{ pack_cell_keys(cut) }},
        insurer_id,
        null,
        null,
        sum(paid_cny),
        sum(incurred_cny),
        true
    from {{ ref('reg_period_losses') }}
    where record_kind = 'claim'
    group by {{ pack_grouping_sets(cut, ['period_id', 'insurer_id']) }}
    {%- if incidents %}
    union all
    select
        period_id,
        {{ pack_cell_keys(cut) }},
        insurer_id,
        null,
        null,
        null,
        null,
        true
    from {{ ref('reg_period_losses') }}
    where record_kind = 'incident'
    group by {{ pack_grouping_sets(cut, ['period_id', 'insurer_id']) }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select
    period_id,
    cut_id,
    row_dim,
    column_dim,
    row_code,
    column_code,
    insurer_id,
    cast(max(written_premium_cny) as decimal(38, 2)) as written_premium_cny,
    cast(max(earned_premium_cny) as decimal(38, 2)) as earned_premium_cny,
    cast(max(paid_cny) as decimal(38, 2)) as paid_cny,
    cast(max(incurred_cny) as decimal(38, 2)) as incurred_cny,
    max(case when reports_loss then 1 else 0 end) = 1 as reports_loss
from parts
group by period_id, cut_id, row_dim, column_dim, row_code, column_code, insurer_id
