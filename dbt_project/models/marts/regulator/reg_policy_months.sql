-- The regulator pack's exposure atoms: one row per policy and calendar month with an earned day,
-- with the same earned days and earned premium as agg_exposure_monthly (macro earned_policy_months),
-- the pack's segment, and the written premium in the month of inception. A period's figures are sums
-- over its months: a policy is in force in a period when it has a row there, and it is written in
-- the period when its inception month is there.
with {{ earned_policy_months(pack_segment_dimensions()) }}

rows as (
    select
        earned_rows.*,
        case when {{ month_of('inception_date') }} = month_start then written_premium_cny else 0 end
            as written_in_month_cny
    from earned_rows
)

select
    policy_key,
    insurer_id,
    insured_key,
    month_start,
    cast(earned_days as integer) as earned_days,
    cast(earned_premium as decimal(20, 2)) as earned_premium_cny,
    cast(written_in_month_cny as decimal(18, 2)) as written_premium_cny,
    {{ pack_segment_dimensions() | join(', ') }}
from rows
