-- The claim size bands partition the amounts: a failing row is a band whose upper bound is not above
-- the previous band's, a bounded band after the open one, or a taxonomy without exactly one open
-- band (the last).
with ordered as (
    select
        claim_size_band,
        sort_order,
        upper_bound,
        lag(upper_bound) over (order by sort_order) as previous_upper_bound,
        row_number() over (order by sort_order) as position,
        max(sort_order) over () as last_sort_order,
        sum(case when upper_bound is null then 1 else 0 end) over () as open_bands
    from {{ ref('tax_claim_size_band') }}
)

select claim_size_band, sort_order, upper_bound, previous_upper_bound, open_bands
from ordered
where open_bands <> 1
    or (upper_bound is null and sort_order <> last_sort_order)
    or (position > 1 and previous_upper_bound is null)
    or upper_bound <= previous_upper_bound
