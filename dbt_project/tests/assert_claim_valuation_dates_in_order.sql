-- A failing row is a claim valuation dated before the claim was reported, or a claim closed before
-- it was reported: development would start before the claim existed.
select
    claim_key,
    valuation_date,
    report_date,
    closed_date,
    insurer_id,
    submission_id
from {{ ref('fct_claim_valuations') }}
where valuation_date < report_date
    or closed_date < report_date
