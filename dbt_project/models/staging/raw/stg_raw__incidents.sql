select
    {{ lineage_columns() }},
    admitted.admitted_at,
    incident_key,
    policy_key,
    insured_key,
    occurred_date,
    discovered_date,
    reported_date,
    resolved_date,
    incident_type,
    attack_vector,
    cve_ids,
    records_affected,
    data_types,
    downtime_hours,
    nullif(trim(systemic_event_ref), '') as systemic_event_ref
from {{ source('raw', 'incidents') }}
-- Only rows of admitted submissions (passed the submission gate, or released by an operator).
inner join (
    select submission_id, admitted_at
    from {{ source('control', 'submission_gate') }}
    where {{ is_admitted('status') }}
) as admitted using (submission_id)
