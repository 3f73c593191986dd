{{ config(materialized='view') }}
-- Completeness of every insurer's deliveries, per record type and canonical field: how the field is
-- delivered in the insurer's latest admitted submission of the record type (the insurer's column,
-- computed from several, a constant, or not delivered), and the share of accepted rows carrying a
-- value over all its admitted submissions. Internal: it names insurers.
with admitted as (
    select
        fields.submission_id,
        fields.record_type,
        fields.field,
        fields.delivery,
        fields.source,
        fields.rows_accepted,
        fields.rows_with_value,
        submissions.insurer_id,
        submissions.ingested_at
    from {{ ref('stg_raw__submission_fields') }} as fields
    inner join {{ ref('stg_raw__submissions') }} as submissions
        on fields.submission_id = submissions.submission_id
    where submissions.status = 'loaded'
        and {{ is_admitted('submissions.gate_status') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by insurer_id, record_type, field order by ingested_at desc, submission_id desc
        ) as recency
    from admitted
),

history as (
    select
        insurer_id,
        record_type,
        field,
        count(*) as admitted_submissions,
        sum(case when delivery in ('not_delivered', 'not_mapped') then 0 else 1 end) as submissions_delivering,
        sum(rows_accepted) as rows_accepted,
        sum(rows_with_value) as rows_with_value
    from admitted
    group by insurer_id, record_type, field
)

select
    latest.insurer_id,
    latest.record_type,
    latest.field,
    latest.delivery,
    latest.source,
    latest.submission_id,
    latest.ingested_at,
    cast(history.admitted_submissions as integer) as admitted_submissions,
    cast(history.submissions_delivering as integer) as submissions_delivering,
    cast(history.rows_accepted as bigint) as rows_accepted,
    cast(history.rows_with_value as bigint) as rows_with_value,
    case
        when history.rows_accepted > 0
            then cast(history.rows_with_value as {{ dbt.type_float() }}) / history.rows_accepted
    end as value_share
from ranked as latest
inner join history
    on latest.insurer_id = history.insurer_id
    and latest.record_type = history.record_type
    and latest.field = history.field
where latest.recency = 1
