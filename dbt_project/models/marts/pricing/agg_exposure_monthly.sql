-- Earned exposure and premium per calendar month and segment. A policy term covers the days from
-- inception (included) to expiry (excluded); its earned days in a month are the overlap with the
-- month. Earned exposure in policy-years = earned days / 365; earned premium = written premium (CNY)
-- × earned days / term days, rounded half up to the fen per policy and month in exact arithmetic
-- (macro earned_premium, the regulator pack's figure too). Written premium and the
-- policies written count in the month of inception; policies in force = terms with any earned day in
-- the month. Months run from the first inception to the data cut-off (the latest valuation date).
with {{ earned_policy_months() }}

written_rows as (
    select * from earned_rows where {{ month_of('inception_date') }} = month_start
),

{{ cell_contributors('in_force', 'earned_rows', ['month_start'], 'earned_premium') }}

{{ cell_contributors('written', 'written_rows', ['month_start'], 'written_premium_cny') }}

cells as (
    select
        month_start,
        {{ segment_columns() }}
        cast(sum(earned_days) / 365.0 as double) as earned_exposure_years,
        cast(sum(earned_premium) as decimal(20, 2)) as earned_premium_cny,
        cast(sum(case when {{ month_of('inception_date') }} = month_start then written_premium_cny else 0 end)
            as decimal(20, 2)) as written_premium_cny,
        cast(sum(case when {{ month_of('inception_date') }} = month_start then 1 else 0 end) as integer) as policies_written,
        cast(count(*) as integer) as policies_in_force
    from earned_rows
    group by month_start, {{ segment_cube() }}
)

-- The cell_* and written_* columns say who is behind each cell (internal: the publication applies
-- the disclosure rule with them and does not publish them).
select
    cells.*,
    {{ cell_status('in_force') }} as disclosure_status,
    case when cells.policies_written = 0 then 'published' else {{ cell_status('written') }} end
        as written_disclosure_status,
    cast(in_force.cell_insureds as integer) as cell_insureds,
    cast(in_force.cell_insurers as integer) as cell_insurers,
    in_force.cell_top_share,
    cast(coalesce(written.cell_insureds, 0) as integer) as written_cell_insureds,
    cast(coalesce(written.cell_insurers, 0) as integer) as written_cell_insurers,
    written.cell_top_share as written_cell_top_share
from cells
left join in_force using (month_start, {{ segment_dimensions() | join(', ') }})
left join written using (month_start, {{ segment_dimensions() | join(', ') }})
