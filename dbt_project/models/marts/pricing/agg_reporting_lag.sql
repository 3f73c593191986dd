-- Reporting lags of loss events by incident type and sector ('all' = rolled up), in days:
-- occurrence → discovery, discovery → report, occurrence → report. Count, mean, median, p90 and
-- max of each (interpolated quantiles); a lag is counted where both dates are known.
with events as (
    select
        coalesce(incident_type, 'unknown') as incident_type,
        coalesce(sector_code, 'unknown') as sector_code,
        cast({{ dbt.datediff('occurred_date', 'discovered_date', 'day') }} as double) as occurrence_to_discovery,
        cast({{ dbt.datediff('discovered_date', 'reported_date', 'day') }} as double) as discovery_to_report,
        cast({{ dbt.datediff('occurred_date', 'reported_date', 'day') }} as double) as occurrence_to_report
    from {{ ref('fct_loss_events') }}
),

-- Who is behind each cell: the insurer incidents of its loss events (one event may be several
-- insurers'), each weighing one.
incidents as (
    select
        coalesce(events.incident_type, 'unknown') as incident_type,
        coalesce(events.sector_code, 'unknown') as sector_code,
        linked.insurer_id,
        events.insured_key,
        1 as weight
    from {{ ref('fct_loss_events') }} as events
    inner join {{ ref('int_incidents__linked') }} as linked using (loss_event_id)
),

{{ cell_contributors('contributors', 'incidents', [], 'weight', ['incident_type', 'sector_code']) }}

cells as (
select
    case when grouping(incident_type) = 1 then 'all' else incident_type end as incident_type,
    case when grouping(sector_code) = 1 then 'all' else sector_code end as sector_code,
    cast(count(*) as integer) as loss_events,
    {%- for lag in ['occurrence_to_discovery', 'discovery_to_report', 'occurrence_to_report'] %}
    cast(count({{ lag }}) as integer) as {{ lag }}_n,
    avg({{ lag }}) as {{ lag }}_mean_days,
    {{ quantile_of(lag, 0.5) }} as {{ lag }}_median_days,
    {{ quantile_of(lag, 0.9) }} as {{ lag }}_p90_days,
    max({{ lag }}) as {{ lag }}_max_days{{ ',' if not loop.last }}
    {%- endfor %}
from events
group by cube(incident_type, sector_code)
)

select
    cells.*,
    {{ cell_status('contributors') }} as disclosure_status
from cells
left join contributors using (incident_type, sector_code)
