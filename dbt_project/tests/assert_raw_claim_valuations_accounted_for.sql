-- A failing row is a delivered claim valuation (staging) that is neither the kept row for its claim
-- and valuation date in fct_claim_valuations nor recorded as superseded in
-- int_claim_valuations__corrections: a valuation was lost, or a correction cannot be traced.
with staged as (
    select insurer_id, claim_key, valuation_date, submission_id, source_row
    from {{ ref('stg_raw__claim_valuations') }}
),

kept as (
    select
        facts.insurer_id,
        facts.claim_key,
        facts.valuation_date,
        facts.submission_id,
        deduplicated.source_row
    from {{ ref('fct_claim_valuations') }} as facts
    inner join {{ ref('int_claim_valuations__deduplicated') }} as deduplicated
        on facts.insurer_id = deduplicated.insurer_id
        and facts.claim_key = deduplicated.claim_key
        and facts.valuation_date = deduplicated.valuation_date
        and facts.submission_id = deduplicated.submission_id
),

superseded as (
    select insurer_id, claim_key, valuation_date, superseded_submission_id as submission_id,
        superseded_source_row as source_row
    from {{ ref('int_claim_valuations__corrections') }}
)

select staged.*
from staged
where not exists (
        select 1 from kept
        where kept.insurer_id = staged.insurer_id
            and kept.claim_key = staged.claim_key
            and kept.valuation_date = staged.valuation_date
            and kept.submission_id = staged.submission_id
            and kept.source_row = staged.source_row
    )
    and not exists (
        select 1 from superseded
        where superseded.insurer_id = staged.insurer_id
            and superseded.claim_key = staged.claim_key
            and superseded.valuation_date = staged.valuation_date
            and superseded.submission_id = staged.submission_id
            and superseded.source_row = staged.source_row
    )
