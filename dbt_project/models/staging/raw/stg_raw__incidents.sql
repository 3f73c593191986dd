select
    {{ lineage_columns() }},
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
