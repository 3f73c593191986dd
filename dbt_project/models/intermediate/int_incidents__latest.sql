{{
    config(
        materialized='incremental',
        unique_key=['insurer_id', 'incident_key'],
        incremental_strategy='delete+insert',
    )
}}
-- One row per insurer incident: its latest delivered version. Incremental: only incidents that
-- rows admitted since the last run mention are re-ranked, over all their admitted versions, so a
-- submission released late cannot displace a newer version; changed_at is the latest admission
-- touching the incident (the watermark).
with {{ ranked_admitted_versions(ref('stg_raw__incidents'), ['insurer_id', 'incident_key']) }}

select
    insurer_id,
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
    systemic_event_ref,
    submission_id,
    source_file,
    source_row,
    ingested_at,
    changed_at,
    '{{ invocation_id }}' as loaded_by_invocation
from ranked
where version_rank = 1
