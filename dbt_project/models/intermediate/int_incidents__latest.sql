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
with changed as (
    select distinct insurer_id, incident_key from {{ ref('stg_raw__incidents') }}
    {{ only_new_submissions('admitted_at', this_column='changed_at') }}
),

versions as (
    select incidents.* from {{ ref('stg_raw__incidents') }} as incidents
    {% if is_incremental() -%}
    inner join changed using (insurer_id, incident_key)
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by insurer_id, incident_key order by {{ latest_first() }}) as version_rank,
        max(admitted_at) over (partition by insurer_id, incident_key) as changed_at
    from versions
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
    changed_at,
    '{{ invocation_id }}' as loaded_by_invocation
from ranked
where version_rank = 1
