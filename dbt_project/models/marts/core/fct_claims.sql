-- One row per claim: its latest state (the valuation with the latest date), its loss event, policy
-- segment and accident date. A claim missing from later submissions keeps its last state.
-- insurer_id and submission_id (of the latest valuation) are internal lineage, never published: they
-- name the submission behind a failing test's row. A claim without a coverage section (the insurer
-- does not deliver the split) has coverage_party 'unknown'.
with valuations as (
    select * from {{ ref('fct_claim_valuations') }}
),

history as (
    select
        claim_key,
        min(valuation_date) as first_valuation_date,
        max(valuation_date) as latest_valuation_date,
        count(*) as n_valuations,
        sum(case when status = 'reopened' then 1 else 0 end) as n_reopened_valuations
    from valuations
    group by claim_key
),

latest as (
    select valuations.*
    from valuations
    inner join history
        on valuations.claim_key = history.claim_key
        and valuations.valuation_date = history.latest_valuation_date
)

select
    latest.claim_key,
    latest.incident_key,
    incidents.loss_event_id,
    latest.policy_key,
    latest.insurer_id,
    coalesce(policies.insured_key, incidents.insured_key) as insured_key,
    latest.coverage_section,
    case when latest.coverage_section is null then 'unknown' else sections.party end as coverage_party,
    latest.status,
    latest.is_open,
    latest.report_date,
    latest.closed_date,
    incidents.occurred_date,
    {{ month_of('latest.report_date') }} as report_month,
    {{ month_of('latest.closed_date') }} as closed_month,
    {{ month_of('incidents.occurred_date') }} as occurred_month,
    cast(extract(year from incidents.occurred_date) as integer) as accident_year,
    incidents.incident_type,
    policies.sector_code,
    policies.product_type,
    policies.province_code,
    policies.revenue_band,
    policies.is_sme,
    policies.is_pilot,
    history.first_valuation_date,
    history.latest_valuation_date,
    cast(history.n_valuations as integer) as n_valuations,
    history.n_reopened_valuations > 0 as was_reopened,
    latest.currency,
    latest.paid_indemnity,
    latest.paid_expense,
    latest.case_reserve,
    latest.recoveries,
    latest.incurred,
    latest.paid_indemnity_cny,
    latest.paid_expense_cny,
    latest.case_reserve_cny,
    latest.recoveries_cny,
    latest.paid_cny,
    latest.incurred_cny,
    latest.submission_id
from latest
inner join history on latest.claim_key = history.claim_key
left join {{ ref('int_incidents__linked') }} as incidents
    on latest.incident_key = incidents.incident_key
left join {{ ref('fct_policies') }} as policies
    on latest.policy_key = policies.policy_key
left join {{ ref('tax_coverage_section') }} as sections
    on latest.coverage_section = sections.coverage_section
