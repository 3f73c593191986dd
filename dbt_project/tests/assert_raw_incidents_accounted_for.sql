-- A failing row is a delivered incident (staging) that is neither the version kept in
-- int_incidents__latest nor superseded by a version ingested at or after it: an incident was lost,
-- or an older delivery overwrote a newer one.
with staged as (
    select insurer_id, incident_key, submission_id, source_row, ingested_at
    from {{ ref('stg_raw__incidents') }}
),

latest as (
    select insurer_id, incident_key, submission_id, source_row, ingested_at
    from {{ ref('int_incidents__latest') }}
)

select
    staged.*,
    case when latest.incident_key is null then 'missing from int_incidents__latest'
        else 'kept version is older than this delivery' end as problem
from staged
left join latest
    on staged.insurer_id = latest.insurer_id
    and staged.incident_key = latest.incident_key
where latest.incident_key is null
    or (
        not (latest.submission_id = staged.submission_id and latest.source_row = staged.source_row)
        and latest.ingested_at < staged.ingested_at
    )
