{#- The published form of fct_claims (published under that name, meta publish_as). A reader joins a
    claim to its published policy by policy_key and to its published loss event by loss_event_id, so a
    claim's class is its own quasi-identifiers (sector, incident type and link group, occurrence period)
    together with those of the rows it can be joined to: its policy's (disclosure level and segment in
    pub_fct_policies) while policy_key is published, its event's (disclosure level, type, periods,
    records band in pub_fct_loss_events) while loss_event_id is. Levels 0-2 publish both keys, 3-6 the
    loss event only, 7-10 neither; 11 suppresses every quasi-identifier. Each claim is at the finest
    level whose combination covers at least var('publication_k_insureds') insureds and
    var('publication_k_insurers') insurers over the claims no finer level placed (macro
    disclosure_levelled). Every claim is published. -#}
{%- set policy = ['policy_level', 'policy_sector_code', 'policy_province_code', 'policy_region_group',
    'policy_revenue_band', 'policy_headcount_band', 'policy_is_sme', 'policy_inception_period',
    'policy_inception_period_start'] -%}
{%- set event = ['event_level', 'event_incident_type', 'event_link_group', 'event_sector_code',
    'event_date_period', 'event_occurred_period_start', 'event_discovered_period_start',
    'event_reported_period_start', 'event_resolved_period_start', 'event_records_affected_band'] -%}
{%- set by_month = ['sector_code', 'incident_type', 'link_group', 'occurred_month'] -%}
{%- set by_quarter = ['sector_code', 'link_group', 'occurred_quarter'] -%}
{%- set by_year = ['sector_code', 'occurred_year'] -%}
{%- set levels = [
    policy + event + by_month, policy + event + by_quarter, policy + event + by_year,
    event + by_month, event + by_quarter, event + by_year, event + ['sector_code'],
    by_month, by_quarter, by_year, ['sector_code'],
] -%}
with claims as (
    select
        claims.*,
        types.link_group,
        cast({{ dbt.date_trunc('quarter', 'claims.occurred_date') }} as date) as occurred_quarter,
        cast({{ dbt.date_trunc('year', 'claims.occurred_date') }} as date) as occurred_year,
        policies.disclosure_level as policy_level,
        policies.sector_code as policy_sector_code,
        policies.province_code as policy_province_code,
        policies.region_group as policy_region_group,
        policies.revenue_band as policy_revenue_band,
        policies.headcount_band as policy_headcount_band,
        policies.is_sme as policy_is_sme,
        policies.inception_period as policy_inception_period,
        policies.inception_period_start as policy_inception_period_start,
        events.disclosure_level as event_level,
        events.incident_type as event_incident_type,
        events.link_group as event_link_group,
        events.sector_code as event_sector_code,
        events.date_period as event_date_period,
        events.occurred_period_start as event_occurred_period_start,
        events.discovered_period_start as event_discovered_period_start,
        events.reported_period_start as event_reported_period_start,
        events.resolved_period_start as event_resolved_period_start,
        events.records_affected_band as event_records_affected_band
    from {{ ref('fct_claims') }} as claims
    left join {{ ref('dim_incident_type') }} as types on claims.incident_type = types.incident_type
    left join {{ ref('pub_fct_policies') }} as policies on claims.policy_key = policies.policy_key
    left join {{ ref('pub_fct_loss_events') }} as events on claims.loss_event_id = events.loss_event_id
),

{{ disclosure_levelled('claims', 'claim_key', 'insured_key', 'insurer_id', levels) }}

{#- A claim's coverage section is null (party 'unknown') where its insurer does not deliver the split:
    left alone, the null would tell that insurer's claims. So the section of a share f of every
    insurer's other claims (the first by a hash of the claim key) is withheld too, f the smallest that
    leaves no insurer more than var('publication_dominance_share') of the withheld-or-unknown claims
    (nothing is withheld where no insurer dominates the unknown ones). -#}
unknown_by_insurer as (
    select
        insurer_id,
        count(*) filter (where coverage_section is null) as unknown,
        count(*) filter (where coverage_section is not null) as known
    from levelled
    group by insurer_id
),

withheld_share as (
    select coalesce(max(
        case
            when u.unknown > {{ var('publication_dominance_share') }} * totals.unknown
                then least(1.0, (u.unknown - {{ var('publication_dominance_share') }} * totals.unknown)
                    / nullif({{ var('publication_dominance_share') }} * totals.known - u.known, 0))
            else 0
        end), 0) as f
    from unknown_by_insurer as u
    cross join (select sum(unknown) as unknown, sum(known) as known from unknown_by_insurer) as totals
),

ranked as (
    select
        levelled.*,
        (row_number() over (partition by insurer_id, coverage_section is null order by {{ stable_hash("claim_key") }}, claim_key) - 1)
        / count(*) over (partition by insurer_id, coverage_section is null) as section_rank
    from levelled
),

published as (
    select
        ranked.*,
        case when ranked.section_rank < withheld_share.f then null else ranked.coverage_section end
            as published_coverage_section,
        case when ranked.section_rank < withheld_share.f then 'unknown' else ranked.coverage_party end
            as published_coverage_party
    from ranked
    cross join withheld_share
)

select
    claim_key,
    incident_key,
    case when disclosure_level <= 6 then loss_event_id end as loss_event_id,
    case when disclosure_level <= 2 then policy_key end as policy_key,
    disclosure_level,
    published_coverage_section as coverage_section,
    published_coverage_party as coverage_party,
    status,
    is_open,
    report_month,
    closed_month,
    case
        when disclosure_level in (0, 3, 7) then 'month'
        when disclosure_level in (1, 4, 8) then 'quarter'
        when disclosure_level in (2, 5, 9) then 'year'
    end as occurred_period,
    case
        when disclosure_level in (0, 3, 7) then occurred_month
        when disclosure_level in (1, 4, 8) then occurred_quarter
        when disclosure_level in (2, 5, 9) then occurred_year
    end as occurred_period_start,
    case when disclosure_level in (0, 1, 2, 3, 4, 5, 7, 8, 9) then accident_year end as accident_year,
    case when disclosure_level in (0, 3, 7) then incident_type end as incident_type,
    case when disclosure_level in (0, 1, 3, 4, 7, 8) then link_group end as link_group,
    case when disclosure_level <= 10 then sector_code end as sector_code,
    product_type,
    is_pilot,
    first_valuation_date,
    latest_valuation_date,
    n_valuations,
    was_reopened,
    {{ published_amounts(claim_amount_columns()) }}
from published
