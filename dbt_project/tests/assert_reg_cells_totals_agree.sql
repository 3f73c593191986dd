-- Every cut of the regulator pack aggregates the same atoms, so a period's grand total is one figure
-- in every cut that carries it. A failing row is a period and figure whose grand totals differ
-- between cuts (a cut that lost or doubled atoms, e.g. a dimension with nulls or a bad band join).
with totals as (
    select *
    from {{ ref('reg_cells') }}
    where row_code = 'total' and column_code = 'total'
)

select
    period_id,
    count(distinct claims) as claim_totals,
    count(distinct incurred_cny) as incurred_totals,
    count(distinct paid_cny) as paid_totals,
    count(distinct policies_in_force) as policy_totals,
    count(distinct earned_premium_cny) as earned_premium_totals,
    count(distinct incidents) as incident_totals
from totals
group by period_id
having count(distinct claims) > 1
    or count(distinct incurred_cny) > 1
    or count(distinct paid_cny) > 1
    or count(distinct policies_in_force) > 1
    or count(distinct earned_premium_cny) > 1
    or count(distinct incidents) > 1
    or count(*) <> {{ pack_cuts() | length }}
