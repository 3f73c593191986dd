-- Frequency and severity per accident year and segment. Claims by the year of their incident's
-- occurrence; exposure = earned policy-years in that calendar year (agg_exposure_monthly);
-- frequency = claims / exposure. Severity of incurred (CNY, latest valuation) per claim and per
-- loss event (a loss event's incurred = its claims in the segment, summed): mean, median, p90, p99
-- (interpolated) and max, with the counts behind every figure. Loss events are counted in per_event
-- (one row per event and segment there), not by a distinct count under the cube.
with claims as (
    {{ segmented_claims(['claim_key', 'loss_event_id', 'accident_year', 'incurred_cny', 'insurer_id', 'insured_key']) }}
    where claims.accident_year is not null
),

weighted as (
    select *, abs(incurred_cny) as weight from claims
),

{{ cell_contributors('contributors', 'weighted', ['accident_year'], 'weight') }}

per_claim as (
    select
        accident_year,
        {{ segment_columns() }}
        count(*) as claims,
        sum(incurred_cny) as incurred_cny,
        {{ severity_stats('incurred_cny', 'severity') }}
    from claims
    group by accident_year, {{ segment_cube() }}
),

events_by_segment as (
    select
        accident_year,
        loss_event_id,
        {{ segment_columns() }}
        sum(incurred_cny) as event_incurred_cny
    from claims
    where loss_event_id is not null
    group by accident_year, loss_event_id, {{ segment_cube() }}
),

per_event as (
    select
        accident_year,
        {{ segment_dimensions() | join(', ') }},
        count(*) as loss_events,
        {{ severity_stats('event_incurred_cny', 'event_severity') }}
    from events_by_segment
    group by accident_year, {{ segment_dimensions() | join(', ') }}
),

exposure as (
    select
        cast(extract(year from month_start) as integer) as accident_year,
        {{ segment_dimensions() | join(', ') }},
        sum(earned_exposure_years) as exposure_years
    from {{ ref('agg_exposure_monthly') }}
    group by cast(extract(year from month_start) as integer), {{ segment_dimensions() | join(', ') }}
)

select
    cast(per_claim.accident_year as integer) as accident_year,
    {% for d in segment_dimensions() %}per_claim.{{ d }},
    {% endfor -%}
    cast(per_claim.claims as integer) as claims,
    cast(coalesce(per_event.loss_events, 0) as integer) as loss_events,
    exposure.exposure_years,
    per_claim.claims / nullif(exposure.exposure_years, 0) as claim_frequency,
    coalesce(per_event.loss_events, 0) / nullif(exposure.exposure_years, 0) as loss_event_frequency,
    cast(per_claim.incurred_cny as decimal(20, 2)) as incurred_cny,
    per_claim.severity_mean,
    {{ severity_quantiles('per_claim', 'severity') }}
    cast(per_claim.severity_max as decimal(20, 2)) as severity_max,
    per_event.event_severity_mean,
    {{ severity_quantiles('per_event', 'event_severity') }}
    cast(per_event.event_severity_max as decimal(20, 2)) as event_severity_max,
    -- Who is behind the claims' figures (internal), and the status of both populations.
    {{ cell_status('contributors') }} as disclosure_status,
    case when exposure.exposure_years is null then 'published'
        else coalesce(exposure_contributors.disclosure_status, 'few_insureds') end as exposure_disclosure_status,
    cast(contributors.cell_insureds as integer) as cell_insureds,
    cast(contributors.cell_insurers as integer) as cell_insurers,
    contributors.cell_top_share
from per_claim
left join exposure using (accident_year, {{ segment_dimensions() | join(', ') }})
left join per_event using (accident_year, {{ segment_dimensions() | join(', ') }})
left join contributors using (accident_year, {{ segment_dimensions() | join(', ') }})
left join {{ ref('int_exposure__yearly_contributors') }} as exposure_contributors
    using (accident_year, {{ segment_dimensions() | join(', ') }})
