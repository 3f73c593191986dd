-- A failing row is a claim valuation whose cumulative paid_indemnity or paid_expense (original
-- currency) is lower than at the claim's previous valuation date: paid amounts are cumulative, so a
-- decrease means a mis-mapped amount, a wrong unit (元 vs 万元) or a valuation from the wrong claim.
-- The row names the submission that made the pair inconsistent: of the two valuations, the one
-- ingested later (a late correction of an earlier date is to blame, not the later valuation it
-- contradicts).
with ordered as (
    select
        claim_key,
        valuation_date,
        currency,
        paid_indemnity,
        paid_expense,
        insurer_id,
        submission_id,
        ingested_at,
        lag(valuation_date) over (partition by claim_key order by valuation_date) as previous_valuation_date,
        lag(paid_indemnity) over (partition by claim_key order by valuation_date) as previous_paid_indemnity,
        lag(paid_expense) over (partition by claim_key order by valuation_date) as previous_paid_expense,
        lag(submission_id) over (partition by claim_key order by valuation_date) as previous_submission_id,
        lag(ingested_at) over (partition by claim_key order by valuation_date) as previous_ingested_at
    from {{ ref('fct_claim_valuations') }}
)

select
    claim_key,
    valuation_date,
    currency,
    paid_indemnity,
    paid_expense,
    previous_valuation_date,
    previous_paid_indemnity,
    previous_paid_expense,
    insurer_id,
    case
        when previous_ingested_at > ingested_at then previous_submission_id
        else submission_id
    end as submission_id
from ordered
where paid_indemnity < previous_paid_indemnity
    or paid_expense < previous_paid_expense
