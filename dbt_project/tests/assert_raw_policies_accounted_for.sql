-- A failing row is a delivered policy row (staging) that is lost on the way to the mart: it is not a
-- version in int_policies__versions, or it is the latest version but not in fct_policies (with the
-- same submission), or it is an older version that names no superseding submission.
with staged as (
    select insurer_id, policy_key, submission_id, source_row
    from {{ ref('stg_raw__policies') }}
),

versions as (
    select insurer_id, policy_key, submission_id, source_row, is_latest, superseded_by_submission_id
    from {{ ref('int_policies__versions') }}
),

policies as (
    select policy_key, insurer_id, submission_id
    from {{ ref('fct_policies') }}
)

select
    staged.insurer_id,
    staged.policy_key,
    staged.submission_id,
    staged.source_row,
    case
        when versions.policy_key is null then 'not in int_policies__versions'
        when versions.is_latest then 'latest version missing from fct_policies'
        else 'older version without superseded_by_submission_id'
    end as problem
from staged
left join versions
    on staged.insurer_id = versions.insurer_id
    and staged.policy_key = versions.policy_key
    and staged.submission_id = versions.submission_id
    and staged.source_row = versions.source_row
left join policies
    on versions.is_latest
    and versions.insurer_id = policies.insurer_id
    and versions.policy_key = policies.policy_key
    and versions.submission_id = policies.submission_id
where versions.policy_key is null
    or (versions.is_latest and policies.policy_key is null)
    or (not versions.is_latest and versions.superseded_by_submission_id is null)
