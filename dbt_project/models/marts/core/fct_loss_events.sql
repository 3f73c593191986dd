-- One row per sector loss event: the insurer incidents linked into it (same insured, compatible
-- type, occurrence within the window), their dates, lags and impact, and the claims they produced.
with incidents as (
    select * from {{ ref('int_incidents__linked') }}
),

systemic as (
    select loss_event_id, max(systemic_event_id) as systemic_event_id
    from {{ ref('int_systemic_events__members') }}
    group by loss_event_id
),

claims as (
    select
        loss_event_id,
        count(*) as n_claims,
        sum(paid_cny) as paid_cny,
        sum(incurred_cny) as incurred_cny
    from {{ ref('fct_claims') }}
    group by loss_event_id
),

policies as (
    select policy_key, sector_code from {{ ref('fct_policies') }}
),

events as (
    select
        incidents.loss_event_id,
        min(incidents.insured_key) as insured_key,
        min(incidents.link_group) as link_group,
        min(incidents.occurred_date) as occurred_date,
        min(incidents.discovered_date) as discovered_date,
        min(incidents.reported_date) as reported_date,
        max(incidents.resolved_date) as resolved_date,
        max(incidents.records_affected) as records_affected,
        max(incidents.downtime_hours) as downtime_hours,
        count(*) as n_insurer_incidents,
        count(distinct incidents.insurer_id) as n_insurers,
        min(policies.sector_code) as sector_code
    from incidents
    left join policies on incidents.policy_key = policies.policy_key
    group by incidents.loss_event_id
),

type_votes as (
    select
        loss_event_id,
        incident_type,
        row_number() over (partition by loss_event_id order by count(*) desc, incident_type) as vote_rank
    from incidents
    group by loss_event_id, incident_type
)

select
    events.loss_event_id,
    events.insured_key,
    type_votes.incident_type,
    events.link_group,
    events.sector_code,
    events.occurred_date,
    events.discovered_date,
    events.reported_date,
    events.resolved_date,
    {{ month_of('events.occurred_date') }} as occurred_month,
    {{ month_of('events.discovered_date') }} as discovered_month,
    {{ month_of('events.reported_date') }} as reported_month,
    {{ month_of('events.resolved_date') }} as resolved_month,
    cast({{ dbt.datediff('events.occurred_date', 'events.discovered_date', 'day') }} as integer) as discovery_lag_days,
    cast({{ dbt.datediff('events.occurred_date', 'events.reported_date', 'day') }} as integer) as report_lag_days,
    events.records_affected,
    events.downtime_hours,
    {{ grid_floor('events.records_affected', steps=(1,), type='bigint') }} as records_affected_band,
    {{ grid_floor('events.downtime_hours', type='decimal(18, 2)') }} as downtime_hours_band,
    cast(events.n_insurer_incidents as integer) as n_insurer_incidents,
    cast(events.n_insurers as integer) as n_insurers,
    cast(coalesce(claims.n_claims, 0) as integer) as n_claims,
    cast(coalesce(claims.paid_cny, 0) as decimal(18, 2)) as paid_cny,
    cast(coalesce(claims.incurred_cny, 0) as decimal(18, 2)) as incurred_cny,
    systemic.systemic_event_id
from events
inner join type_votes on events.loss_event_id = type_votes.loss_event_id and type_votes.vote_rank = 1
left join claims on events.loss_event_id = claims.loss_event_id
left join systemic on events.loss_event_id = systemic.loss_event_id
