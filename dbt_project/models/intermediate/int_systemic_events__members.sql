-- Systemic events for accumulation: (1) incidents that name the same systemic_event_ref (a campaign,
-- a CVE, a vendor outage); (2) incidents without a reference that cluster by type and date: a day
-- on which at least var('systemic_min_insureds') insureds report the same type, and at least
-- var('systemic_spike_factor') times that type's average daily count, joined with spike days
-- within var('systemic_cluster_gap_days') of each other.
with linked as (
    select * from {{ ref('int_incidents__linked') }}
),

by_reference as (
    select
        incident_key,
        insurer_id,
        submission_id,
        loss_event_id,
        'reference' as grouping_method,
        {{ surrogate_id(["'reference'", 'systemic_event_ref']) }} as systemic_event_id,
        systemic_event_ref
    from linked
    where systemic_event_ref is not null
),

unreferenced as (
    select * from linked where systemic_event_ref is null
),

daily as (
    select incident_type, occurred_date, count(distinct insured_key) as insureds
    from unreferenced
    group by incident_type, occurred_date
),

type_rate as (
    select
        incident_type,
        sum(insureds) * 1.0 / ({{ dbt.datediff('min(occurred_date)', 'max(occurred_date)', 'day') }} + 1) as insureds_per_day
    from daily
    group by incident_type
),

spike_days as (
    select daily.incident_type, daily.occurred_date
    from daily
    inner join type_rate on daily.incident_type = type_rate.incident_type
    where daily.insureds >= {{ var('systemic_min_insureds') }}
        and daily.insureds >= {{ var('systemic_spike_factor') }} * type_rate.insureds_per_day
),

spike_clusters as (
    select
        incident_type,
        occurred_date,
        sum(starts_cluster) over (
            partition by incident_type order by occurred_date rows between unbounded preceding and current row
        ) as cluster_sequence
    from (
        select
            incident_type,
            occurred_date,
            case
                when {{ dbt.datediff(
                    'lag(occurred_date) over (partition by incident_type order by occurred_date)',
                    'occurred_date', 'day') }} <= {{ var('systemic_cluster_gap_days') }} then 0
                else 1
            end as starts_cluster
        from spike_days
    ) as flagged
),

by_cluster as (
    select
        unreferenced.incident_key,
        unreferenced.insurer_id,
        unreferenced.submission_id,
        unreferenced.loss_event_id,
        'date_cluster' as grouping_method,
        {{ surrogate_id(["'cluster'", 'spike_clusters.incident_type', 'spike_clusters.cluster_sequence']) }} as systemic_event_id,
        cast(null as {{ dbt.type_string() }}) as systemic_event_ref
    from unreferenced
    inner join spike_clusters
        on unreferenced.incident_type = spike_clusters.incident_type
        and unreferenced.occurred_date = spike_clusters.occurred_date
)

select * from by_reference
union all
select * from by_cluster
