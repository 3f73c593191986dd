-- Cross-insurer event linking. Incidents of the same insured (insured_key is the same at every
-- insurer), of compatible types (same link_group in tax_incident_type) and occurring within
-- var('loss_event_window_days') of the previous one are one sector loss event. Chaining is
-- transitive: each incident is compared with the one before it.
with incidents as (
    select
        incidents.*,
        coalesce(types.link_group, 'unmapped') as link_group
    from {{ ref('int_incidents__latest') }} as incidents
    left join {{ ref('tax_incident_type') }} as types
        on incidents.incident_type = types.incident_type
),

ordered as (
    select
        *,
        lag(occurred_date) over (
            partition by insured_key, link_group order by occurred_date, insurer_id, incident_key
        ) as previous_occurred_date
    from incidents
),

flagged as (
    select
        *,
        case
            when previous_occurred_date is null then 1
            when {{ dbt.datediff('previous_occurred_date', 'occurred_date', 'day') }} > {{ var('loss_event_window_days') }} then 1
            else 0
        end as starts_event
    from ordered
),

numbered as (
    select
        *,
        sum(starts_event) over (
            partition by insured_key, link_group order by occurred_date, insurer_id, incident_key
            rows between unbounded preceding and current row
        ) as event_sequence
    from flagged
)

-- The id hashes the event's first occurrence date rather than its running number, so a late
-- incident only changes the id of the event it joins, never the ids of later events.
select
    *,
    {{ surrogate_id(['insured_key', 'link_group', 'event_start_date']) }} as loss_event_id
from (
    select
        *,
        min(occurred_date) over (partition by insured_key, link_group, event_sequence) as event_start_date
    from numbered
) as events
