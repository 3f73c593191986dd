-- The regulator pack's claim atoms: every claim at its latest valuation (fct_claims), dated by its
-- incident's occurrence (accident-period basis; null when not delivered), with the pack's segment of
-- its policy ('unknown' when the policy is not in the database), paid and incurred in CNY and the
-- reporting lag in days.
select
    claims.claim_key,
    claims.insurer_id,
    claims.insured_key,
    claims.occurred_date,
    coalesce(claims.incident_type, 'unknown') as incident_type,
    {{ policy_segment('policies', pack_segment_dimensions()) }},
    claims.paid_cny,
    claims.incurred_cny,
    cast({{ dbt.datediff('claims.occurred_date', 'claims.report_date', 'day') }} as integer) as report_lag_days
from {{ ref('fct_claims') }} as claims
left join {{ ref('fct_policies') }} as policies on policies.policy_key = claims.policy_key
