with days as (
    {{ date_spine_days(var('calendar_start'), var('calendar_end')) }}
)

select
    date_day,
    cast(extract(year from date_day) as integer) as year,
    cast(extract(quarter from date_day) as integer) as quarter,
    cast(extract(month from date_day) as integer) as month,
    {{ month_of('date_day') }} as month_start,
    cast(extract(year from date_day) as {{ dbt.type_string() }}) || 'Q' || cast(extract(quarter from date_day) as {{ dbt.type_string() }}) as year_quarter,
    cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
    date_day = cast({{ dbt.last_day('date_day', 'month') }} as date) as is_month_end
from days
