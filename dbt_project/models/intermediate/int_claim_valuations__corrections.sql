-- Traceability of corrections: every delivered claim valuation that a later submission replaced,
-- with the submission that replaced it.
with ranked as (
    select
        insurer_id,
        claim_key,
        valuation_date,
        submission_id,
        source_file,
        source_row,
        ingested_at,
        row_number() over (
            partition by insurer_id, claim_key, valuation_date order by {{ latest_first() }}
        ) as version_rank,
        first_value(submission_id) over (
            partition by insurer_id, claim_key, valuation_date order by {{ latest_first() }}
        ) as winning_submission_id
    from {{ ref('stg_raw__claim_valuations') }}
)

select
    insurer_id,
    claim_key,
    valuation_date,
    submission_id as superseded_submission_id,
    source_file as superseded_source_file,
    source_row as superseded_source_row,
    winning_submission_id,
    version_rank
from ranked
where version_rank > 1
