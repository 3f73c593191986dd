{#- The published form of fct_loss_events (published under that name, meta publish_as): each event's
    quasi-identifiers (sector, incident type and link group, occurrence / discovery / report /
    resolution dates, records affected) at the finest level whose combination covers at least
    var('publication_k_insureds') insureds and var('publication_k_insurers') insurers over the events
    no finer level placed (macro disclosure_levelled; an event is attributed to the first insurer by
    id, as cyberclaims.publication.trust does) — 0: type, months, records decade; 1: link group, quarters, records
    power of 1,000; 2: link group, occurrence year, records power of 1,000; 3: occurrence year;
    4: sector only; 5: nothing. So no event is unique on (published dates, records band, sector).
    Every event is published. -#}
{%- set levels = [
    ['sector_code', 'incident_type', 'link_group', 'occurred_month', 'discovered_month', 'reported_month',
     'resolved_month', 'records_affected_band'],
    ['sector_code', 'link_group', 'occurred_quarter', 'discovered_quarter', 'reported_quarter',
     'resolved_quarter', 'records_affected_magnitude'],
    ['sector_code', 'link_group', 'occurred_year', 'records_affected_magnitude'],
    ['sector_code', 'occurred_year'],
    ['sector_code'],
] -%}
with first_insurer as (
    select loss_event_id, min(insurer_id) as insurer_id
    from {{ ref('int_incidents__linked') }}
    group by loss_event_id
),

events as (
    select
        events.*,
        first_insurer.insurer_id,
        {%- for d in ['occurred', 'discovered', 'reported', 'resolved'] %}
        cast({{ dbt.date_trunc('quarter', 'events.' ~ d ~ '_date') }} as date) as {{ d }}_quarter,
        {%- endfor %}
        cast({{ dbt.date_trunc('year', 'events.occurred_date') }} as date) as occurred_year,
        case
            when events.records_affected is null then null
            when events.records_affected < 1 then cast(0 as bigint)
            else cast(power(1000, floor(log10(events.records_affected) / 3 + 1e-9)) as bigint)
        end as records_affected_magnitude
    from {{ ref('fct_loss_events') }} as events
    left join first_insurer on events.loss_event_id = first_insurer.loss_event_id
),

{{ disclosure_levelled('events', 'loss_event_id', 'insured_key', 'insurer_id', levels) }}

published as (
    select * from levelled
)

select
    loss_event_id,
    disclosure_level,
    case when disclosure_level = 0 then incident_type end as incident_type,
    case when disclosure_level <= 2 then link_group end as link_group,
    case when disclosure_level <= 4 then sector_code end as sector_code,
    case
        when disclosure_level = 0 then 'month'
        when disclosure_level = 1 then 'quarter'
        when disclosure_level <= 3 then 'year'
    end as date_period,
    case
        when disclosure_level = 0 then occurred_month
        when disclosure_level = 1 then occurred_quarter
        when disclosure_level <= 3 then occurred_year
    end as occurred_period_start,
    case
        when disclosure_level = 0 then discovered_month
        when disclosure_level = 1 then discovered_quarter
    end as discovered_period_start,
    case
        when disclosure_level = 0 then reported_month
        when disclosure_level = 1 then reported_quarter
    end as reported_period_start,
    case
        when disclosure_level = 0 then resolved_month
        when disclosure_level = 1 then resolved_quarter
    end as resolved_period_start,
    case
        when disclosure_level = 0 then records_affected_band
        when disclosure_level <= 2 then records_affected_magnitude
    end as records_affected_band,
    case when disclosure_level <= 1 then downtime_hours_band end as downtime_hours_band,
    n_insurer_incidents,
    n_insurers,
    n_claims,
    {{ significant_round('paid_cny') }} as paid_cny,
    {{ significant_round('incurred_cny') }} as incurred_cny,
    systemic_event_id
from published
