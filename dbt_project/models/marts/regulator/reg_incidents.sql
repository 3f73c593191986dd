-- The regulator pack's incident atoms: every incident at its latest delivered version
-- (int_incidents__linked), dated by its occurrence (accident-period basis), with the pack's segment
-- of its policy ('unknown' when the policy is not in the database).
select
    incidents.incident_key,
    incidents.insurer_id,
    incidents.insured_key,
    incidents.occurred_date,
    coalesce(incidents.incident_type, 'unknown') as incident_type,
    {{ policy_segment('policies', pack_segment_dimensions()) }}
from {{ ref('int_incidents__linked') }} as incidents
left join {{ ref('fct_policies') }} as policies on policies.policy_key = incidents.policy_key
