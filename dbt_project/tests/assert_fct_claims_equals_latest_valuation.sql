-- A failing row is a claim that is in fct_claim_valuations but not in fct_claims (or the reverse),
-- or whose fct_claims row differs from its valuation with the latest valuation_date (status, dates,
-- currency, amounts, submission), or whose valuation count and date range disagree with the history.
with history as (
    select
        claim_key,
        min(valuation_date) as first_valuation_date,
        max(valuation_date) as latest_valuation_date,
        count(*) as n_valuations
    from {{ ref('fct_claim_valuations') }}
    group by claim_key
),

latest as (
    select valuations.*
    from {{ ref('fct_claim_valuations') }} as valuations
    inner join history
        on valuations.claim_key = history.claim_key
        and valuations.valuation_date = history.latest_valuation_date
),

claims as (
    select * from {{ ref('fct_claims') }}
)

select
    coalesce(claims.claim_key, latest.claim_key) as claim_key,
    case
        when claims.claim_key is null then 'missing from fct_claims'
        when latest.claim_key is null then 'not in fct_claim_valuations'
        else 'differs from latest valuation'
    end as problem,
    coalesce(claims.insurer_id, latest.insurer_id) as insurer_id,
    coalesce(latest.submission_id, claims.submission_id) as submission_id
from claims
full outer join latest on claims.claim_key = latest.claim_key
left join history on coalesce(claims.claim_key, latest.claim_key) = history.claim_key
where claims.claim_key is null
    or latest.claim_key is null
    or claims.latest_valuation_date is distinct from history.latest_valuation_date
    or claims.first_valuation_date is distinct from history.first_valuation_date
    or claims.n_valuations is distinct from history.n_valuations
    or claims.incident_key is distinct from latest.incident_key
    or claims.policy_key is distinct from latest.policy_key
    or claims.insurer_id is distinct from latest.insurer_id
    or claims.submission_id is distinct from latest.submission_id
    or claims.coverage_section is distinct from latest.coverage_section
    or claims.status is distinct from latest.status
    or claims.is_open is distinct from latest.is_open
    or claims.report_date is distinct from latest.report_date
    or claims.closed_date is distinct from latest.closed_date
    or claims.currency is distinct from latest.currency
    or claims.paid_indemnity is distinct from latest.paid_indemnity
    or claims.paid_expense is distinct from latest.paid_expense
    or claims.case_reserve is distinct from latest.case_reserve
    or claims.recoveries is distinct from latest.recoveries
    or claims.incurred is distinct from latest.incurred
    or claims.paid_indemnity_cny is distinct from latest.paid_indemnity_cny
    or claims.paid_expense_cny is distinct from latest.paid_expense_cny
    or claims.case_reserve_cny is distinct from latest.case_reserve_cny
    or claims.recoveries_cny is distinct from latest.recoveries_cny
    or claims.paid_cny is distinct from latest.paid_cny
    or claims.incurred_cny is distinct from latest.incurred_cny
