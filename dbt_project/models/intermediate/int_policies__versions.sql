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
with {{ ranked_admitted_versions(ref('stg_raw__policies'), ['insurer_id', 'policy_key']) }}

select
    *,
    version_rank = 1 as is_latest,
    lag(submission_id) over (partition by insurer_id, policy_key order by version_rank) as superseded_by_submission_id
from ranked
