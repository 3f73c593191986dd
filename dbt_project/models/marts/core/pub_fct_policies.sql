{#- The published form of fct_policies (published under that name, meta publish_as): every row's
    quasi-identifiers of the insured (sector, province, revenue and headcount band, inception) at the
    finest level of the hierarchy below at which its combination covers at least
    var('publication_k_insureds') insureds and var('publication_k_insurers') insurers, counted over
    the rows no finer level placed. disclosure_level is published, so rows of two levels never share a
    combination and every published combination is one that passed. Rows no level places (level 5)
    are published with every quasi-identifier suppressed; when together they cover too few insureds or
    insurers, the sector-only rows (level 4) join them. Every policy is published, so sums over the
    published table are the sector's. -#}
{#- Each level lists every quasi-identifier it publishes, derived ones too (region group of a
    province, SME flag of the bands), so that a published combination is exactly a class tested. -#}
{%- set levels = [
    ['sector_code', 'province_code', 'region_group', 'revenue_band', 'headcount_band', 'is_sme', 'inception_month'],
    ['sector_code', 'region_group', 'revenue_band', 'headcount_band', 'is_sme', 'inception_quarter'],
    ['sector_code', 'region_group', 'is_sme', 'inception_year'],
    ['sector_code', 'inception_year'],
    ['sector_code'],
] -%}
with policies as (
    select
        policies.*,
        regions.region_group,
        cast({{ dbt.date_trunc('quarter', 'policies.inception_date') }} as date) as inception_quarter,
        cast({{ dbt.date_trunc('year', 'policies.inception_date') }} as date) as inception_year
    from {{ ref('fct_policies') }} as policies
    left join {{ ref('dim_region') }} as regions on policies.province_code = regions.province_code
),
{% for columns in levels %}
{%- set i = loop.index0 %}
remaining_{{ i }} as (
    {%- if i == 0 %}
    select * from policies
    {%- else %}
    select * from remaining_{{ i - 1 }}
    where policy_key not in (select policy_key from placed_{{ i - 1 }})
    {%- endif %}
),

classes_{{ i }} as (
    select {{ columns | join(', ') }}
    from remaining_{{ i }}
    group by {{ columns | join(', ') }}
    having count(distinct insured_key) >= {{ var('publication_k_insureds') }}
        and count(distinct insurer_id) >= {{ var('publication_k_insurers') }}
),

placed_{{ i }} as (
    select remaining_{{ i }}.policy_key, {{ i }} as disclosure_level
    from remaining_{{ i }}
    inner join classes_{{ i }}
        on {% for c in columns %}remaining_{{ i }}.{{ c }} is not distinct from classes_{{ i }}.{{ c }}{% if not loop.last %}
        and {% endif %}{% endfor %}
),
{% endfor %}
placed as (
    {%- for columns in levels %}
    select policy_key, disclosure_level from placed_{{ loop.index0 }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

placed_or_not as (
    select policies.*, coalesce(placed.disclosure_level, {{ levels | length }}) as placed_level
    from policies
    left join placed on policies.policy_key = placed.policy_key
),

residual as (
    select
        count(*) = 0
        or (count(distinct insured_key) >= {{ var('publication_k_insureds') }}
            and count(distinct insurer_id) >= {{ var('publication_k_insurers') }}) as passes
    from placed_or_not
    where placed_level = {{ levels | length }}
),

levelled as (
    select
        placed_or_not.*,
        case
            when placed_level = {{ levels | length - 1 }} and not (select passes from residual)
                then {{ levels | length }}
            else placed_level
        end as disclosure_level
    from placed_or_not
)

select
    policy_key,
    cast(disclosure_level as integer) as disclosure_level,
    case when disclosure_level <= 4 then sector_code end as sector_code,
    case when disclosure_level = 0 then province_code end as province_code,
    case when disclosure_level <= 2 then region_group end as region_group,
    case when disclosure_level <= 1 then revenue_band end as revenue_band,
    case when disclosure_level <= 1 then headcount_band end as headcount_band,
    case when disclosure_level <= 2 then is_sme end as is_sme,
    case
        when disclosure_level = 0 then 'month'
        when disclosure_level = 1 then 'quarter'
        when disclosure_level <= 3 then 'year'
    end as inception_period,
    case
        when disclosure_level = 0 then inception_month
        when disclosure_level = 1 then inception_quarter
        when disclosure_level <= 3 then inception_year
    end as inception_period_start,
    product_type,
    pilot_code,
    is_pilot,
    risk_assessment_score,
    risk_score_band,
    is_standalone,
    term_days,
    limit_grid_cny,
    deductible_grid_cny,
    {{ significant_round('written_premium_cny') }} as written_premium_cny
from levelled
