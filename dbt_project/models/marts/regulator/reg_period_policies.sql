-- The regulator pack's exposure atoms per period: one row per period (reg_periods) and policy in force
-- in it, its months of reg_policy_months summed: earned days, earned premium (each month rounded to the
-- fen, then added) and the premium written in the period, with the pack's dimensions of the policy.
select
    periods.period_id,
    months.policy_key,
    months.insurer_id,
    months.insured_key,
    months.sector_code as sector,
    months.product_type,
    months.province_code as province,
    months.pilot_programme as pilot,
    months.enterprise_size as size,
    cast(sum(months.earned_days) as integer) as earned_days,
    cast(sum(months.earned_premium_cny) as decimal(20, 2)) as earned_premium_cny,
    cast(sum(months.written_premium_cny) as decimal(20, 2)) as written_premium_cny
from {{ ref('reg_policy_months') }} as months
inner join {{ ref('reg_periods') }} as periods
    on months.month_start between periods.start_date and periods.end_date
group by
    periods.period_id,
    months.policy_key,
    months.insurer_id,
    months.insured_key,
    months.sector_code,
    months.product_type,
    months.province_code,
    months.pilot_programme,
    months.enterprise_size
