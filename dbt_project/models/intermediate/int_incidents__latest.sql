{{
    config(
        materialized='incremental',
        unique_key=['insurer_id', 'incident_key'],
        incremental_strategy='delete+insert',
    )
}}
-- One row per insurer incident: its latest delivered version. Incremental: only submissions
-- ingested since the last run are read; a newer version replaces the stored one.
with new_rows as (
    select * from {{ ref('stg_raw__incidents') }}
    {{ only_new_submissions() }}
),

ranked as (
    select
        *,
        row_number() over (partition by insurer_id, incident_key order by {{ latest_first() }}) as version_rank
    from new_rows
)

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
    '{{ invocation_id }}' as loaded_by_invocation
from ranked
where version_rank = 1
