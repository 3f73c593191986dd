{{
    config(
        materialized='incremental',
        unique_key=['insurer_id', 'policy_key'],
        incremental_strategy='delete+insert',
    )
}}
-- Every delivered version of every policy term. The latest submission wins; each older version
-- says which submission superseded it, so a correction can be traced.
-- Incremental: only the policy terms that rows admitted since the last run mention are re-ranked,
-- over all their admitted versions (a submission released late cannot displace a newer version);
-- all their versions replace the stored ones. changed_at (latest admission touching the term) is
-- the watermark.
with changed as (
    select distinct insurer_id, policy_key from {{ ref('stg_raw__policies') }}
    {{ only_new_submissions('admitted_at', this_column='changed_at') }}
),

versions as (
    select policies.* from {{ ref('stg_raw__policies') }} as policies
    {% if is_incremental() -%}
    inner join changed using (insurer_id, policy_key)
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by insurer_id, policy_key order by {{ latest_first() }}) as version_rank,
        max(admitted_at) over (partition by insurer_id, policy_key) as changed_at
    from versions
)

select
    *,
    version_rank = 1 as is_latest,
    lag(submission_id) over (partition by insurer_id, policy_key order by version_rank) as superseded_by_submission_id
from ranked
