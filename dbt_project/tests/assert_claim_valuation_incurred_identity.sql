-- A failing row is a claim valuation whose incurred does not equal
-- paid_indemnity + paid_expense + case_reserve − recoveries, in the original currency or in CNY
-- (where it must be exactly that sum of the converted, rounded parts), or whose paid_cny is not
-- paid_indemnity_cny + paid_expense_cny. A missing FX rate for the valuation month makes the CNY
-- amounts null (the submission gate holds such a file first: FX_RATE_MISSING).
select
    claim_key,
    valuation_date,
    currency,
    incurred,
    paid_indemnity + paid_expense + case_reserve - recoveries as expected_incurred,
    incurred_cny,
    paid_indemnity_cny + paid_expense_cny + case_reserve_cny - recoveries_cny as expected_incurred_cny,
    paid_cny,
    paid_indemnity_cny + paid_expense_cny as expected_paid_cny,
    insurer_id,
    submission_id
from {{ ref('fct_claim_valuations') }}
where incurred <> paid_indemnity + paid_expense + case_reserve - recoveries
    or incurred_cny <> paid_indemnity_cny + paid_expense_cny + case_reserve_cny - recoveries_cny
    or paid_cny <> paid_indemnity_cny + paid_expense_cny
    or incurred is null
    or incurred_cny is null
