-- A failing row is a claim valuation whose cumulative paid_indemnity or paid_expense (original
-- currency) is lower than at the claim's previous valuation date: paid amounts are cumulative, so a
-- decrease means a mis-mapped amount, a wrong unit (元 vs 万元) or a valuation from the wrong claim.
with ordered as (
    select
        claim_key,
        valuation_date,
        currency,
        paid_indemnity,
        paid_expense,
        lag(valuation_date) over (partition by claim_key order by valuation_date) as previous_valuation_date,
        lag(paid_indemnity) over (partition by claim_key order by valuation_date) as previous_paid_indemnity,
        lag(paid_expense) over (partition by claim_key order by valuation_date) as previous_paid_expense
    from {{ ref('fct_claim_valuations') }}
)

select *
from ordered
where paid_indemnity < previous_paid_indemnity
    or paid_expense < previous_paid_expense
