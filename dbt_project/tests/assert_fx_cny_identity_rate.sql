-- A failing row is a month whose CNY→CNY rate is missing or not exactly 1: yuan amounts would be
-- changed (or dropped) by the FX conversion.
with months as (
    select distinct rate_month from {{ ref('fx_rates_monthly') }}
)

select months.rate_month, rates.cny_per_unit
from months
left join {{ ref('fx_rates_monthly') }} as rates
    on rates.rate_month = months.rate_month
    and rates.currency = 'CNY'
where rates.cny_per_unit is null or rates.cny_per_unit <> 1
