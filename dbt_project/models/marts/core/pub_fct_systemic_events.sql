{#- The published form of fct_systemic_events (published under that name, meta publish_as). A systemic
    event is public knowledge (a named campaign, CVE or vendor outage), so its row tells what the
    sector's insurers lost on it: the counts and amounts are published only where the event gathers at
    least var('publication_k_insureds') insureds and var('publication_k_insurers') insurers and no
    insurer holds more than var('publication_dominance_share') of its incurred amount (the regulator
    pack's dominance rule); otherwise they are null and is_disclosed is false. Dates are published at
    month. Every systemic event is published (fct_loss_events.systemic_event_id refers to it). -#}
with events as (
    select * from {{ ref('fct_systemic_events') }}
),

members as (
    select * from {{ ref('int_systemic_events__members') }}
),

claims as (
    select incident_key, sum(incurred_cny) as incurred_cny
    from {{ ref('fct_claims') }}
    group by incident_key
),

by_insurer as (
    select members.systemic_event_id, members.insurer_id, sum(coalesce(claims.incurred_cny, 0)) as incurred_cny
    from members
    left join claims on members.incident_key = claims.incident_key
    group by members.systemic_event_id, members.insurer_id
),

dominance as (
    select
        systemic_event_id,
        case when sum(incurred_cny) > 0 then max(incurred_cny) / sum(incurred_cny) else 0 end as top_share
    from by_insurer
    group by systemic_event_id
),

judged as (
    select
        events.*,
        events.n_insureds >= {{ var('publication_k_insureds') }}
        and events.n_insurers >= {{ var('publication_k_insurers') }}
        and coalesce(dominance.top_share, 0) <= {{ var('publication_dominance_share') }} as is_disclosed
    from events
    left join dominance on events.systemic_event_id = dominance.systemic_event_id
)

select
    systemic_event_id,
    grouping_method,
    systemic_event_ref,
    incident_type,
    cast({{ dbt.date_trunc('month', 'first_occurred_date') }} as date) as first_occurred_month,
    cast({{ dbt.date_trunc('month', 'last_occurred_date') }} as date) as last_occurred_month,
    is_disclosed,
    {%- for c in ['n_insureds', 'n_loss_events', 'n_insurer_incidents', 'n_insurers', 'n_claims'] %}
    case when is_disclosed then {{ c }} end as {{ c }},
    {%- endfor %}
    case when is_disclosed then paid_cny end as paid_cny,
    case when is_disclosed then incurred_cny end as incurred_cny
from judged
