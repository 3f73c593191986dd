-- Every delivered version of every policy term. The latest submission wins; each older version
-- says which submission superseded it, so a correction can be traced.
with ranked as (
    select
        *,
        row_number() over (partition by insurer_id, policy_key order by {{ latest_first() }}) as version_rank
    from {{ ref('stg_raw__policies') }}
)

select
    *,
    version_rank = 1 as is_latest,
    lag(submission_id) over (partition by insurer_id, policy_key order by version_rank) as superseded_by_submission_id
from ranked
