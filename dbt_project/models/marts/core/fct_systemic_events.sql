-- Accumulation: one row per systemic event (a campaign, CVE or vendor outage shared by many
-- insureds, or a date cluster of one incident type), with the insureds, insurers, loss events,
-- claims and amounts it gathers.
with members as (
    select * from {{ ref('int_systemic_events__members') }}
),

incidents as (
    select * from {{ ref('int_incidents__linked') }}
),

claims as (
    select incident_key, count(*) as n_claims, sum(paid_cny) as paid_cny, sum(incurred_cny) as incurred_cny
    from {{ ref('fct_claims') }}
    group by incident_key
)

select
    members.systemic_event_id,
    min(members.grouping_method) as grouping_method,
    min(members.systemic_event_ref) as systemic_event_ref,
    min(incidents.incident_type) as incident_type,
    min(incidents.occurred_date) as first_occurred_date,
    max(incidents.occurred_date) as last_occurred_date,
    cast(count(distinct incidents.insured_key) as integer) as n_insureds,
    cast(count(distinct members.loss_event_id) as integer) as n_loss_events,
    cast(count(*) as integer) as n_insurer_incidents,
    cast(count(distinct members.insurer_id) as integer) as n_insurers,
    cast(coalesce(sum(claims.n_claims), 0) as integer) as n_claims,
    cast(coalesce(sum(claims.paid_cny), 0) as decimal(18, 2)) as paid_cny,
    cast(coalesce(sum(claims.incurred_cny), 0) as decimal(18, 2)) as incurred_cny
from members
inner join incidents on members.incident_key = incidents.incident_key
left join claims on members.incident_key = claims.incident_key
group by members.systemic_event_id
