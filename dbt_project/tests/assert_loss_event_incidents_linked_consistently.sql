-- A failing row is a sector loss event that breaks the linking rule: its insurer incidents belong to
-- more than one insured or more than one link_group, or (ordered by occurrence) two consecutive
-- incidents are more than var('loss_event_window_days') days apart, or an incident of the same
-- insured and link_group that lies within the window of the event's chain was left in another event.
-- Each failing row names an incident's insurer and submission (every incident of a mixed event).
with incidents as (
    select insurer_id, submission_id, incident_key, insured_key, link_group, occurred_date, loss_event_id
    from {{ ref('int_incidents__linked') }}
),

mixed_events as (
    select loss_event_id
    from incidents
    group by loss_event_id
    having count(distinct insured_key) > 1 or count(distinct link_group) > 1
),

mixed as (
    select
        incidents.loss_event_id,
        'more than one insured or link_group' as problem,
        incidents.insurer_id,
        incidents.submission_id
    from incidents
    inner join mixed_events on incidents.loss_event_id = mixed_events.loss_event_id
),

chained as (
    select
        loss_event_id,
        insurer_id,
        submission_id,
        insured_key,
        link_group,
        occurred_date,
        lag(occurred_date) over (
            partition by insured_key, link_group order by occurred_date, insurer_id, incident_key
        ) as previous_occurred_date,
        lag(loss_event_id) over (
            partition by insured_key, link_group order by occurred_date, insurer_id, incident_key
        ) as previous_loss_event_id
    from incidents
),

broken_chain as (
    select
        loss_event_id,
        case
            when loss_event_id = previous_loss_event_id then 'gap within the event exceeds the window'
            else 'incident within the window of the previous event was not linked to it'
        end as problem,
        insurer_id,
        submission_id
    from chained
    where previous_occurred_date is not null
        and (
            (loss_event_id = previous_loss_event_id
                and {{ dbt.datediff('previous_occurred_date', 'occurred_date', 'day') }} > {{ var('loss_event_window_days') }})
            or (loss_event_id <> previous_loss_event_id
                and {{ dbt.datediff('previous_occurred_date', 'occurred_date', 'day') }} <= {{ var('loss_event_window_days') }})
        )
)

select * from mixed
union all
select * from broken_chain
