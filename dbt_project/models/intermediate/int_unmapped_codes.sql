-- Codes in the warehouse that map to nothing in the current taxonomy seeds, per insurer and
-- submission. Ingestion validates codes when a file arrives; this catches what a later taxonomy
-- version no longer knows, and amounts whose currency has no FX rate for the month. Empty on healthy
-- data. A null code (a field the insurer does not deliver) is unknown, not unmapped.
with policies as (
    select * from {{ ref('int_policies__enriched') }}
),

coverage as (
    select insurer_id, submission_id, {{ unnest_list('coverage_sections') }} as code from policies
),

incidents as (
    select * from {{ ref('int_incidents__latest') }}
),

data_types as (
    select insurer_id, submission_id, {{ unnest_list('data_types') }} as code from incidents
),

claims as (
    select * from {{ ref('int_claim_valuations__deduplicated') }}
),

problems as (
    select insurer_id, submission_id, 'policy' as record_type, 'product_type' as field, product_type as code
    from policies where product_type not in (select product_type from {{ ref('tax_product_type') }})
    union all
    select insurer_id, submission_id, 'policy', 'sector_code', coalesce(sector_label_code, industry_code)
    from policies where sector_code is null or sector_code not in (select sector_code from {{ ref('tax_sector') }})
    union all
    select insurer_id, submission_id, 'policy', 'region_code', region_code
    from policies where province_code not in (select province_code from {{ ref('tax_region') }})
    union all
    select insurer_id, submission_id, 'policy', 'currency', currency
    from policies where fx_rate is null
    union all
    select insurer_id, submission_id, 'policy', 'coverage_sections', code
    from coverage where code not in (select coverage_section from {{ ref('tax_coverage_section') }})
    union all
    select insurer_id, submission_id, 'incident', 'incident_type', incident_type
    from incidents where incident_type not in (select incident_type from {{ ref('tax_incident_type') }})
    union all
    select insurer_id, submission_id, 'incident', 'attack_vector', attack_vector
    from incidents where attack_vector not in (select attack_vector from {{ ref('tax_attack_vector') }})
    union all
    select insurer_id, submission_id, 'incident', 'data_types', code
    from data_types where code not in (select data_type from {{ ref('tax_data_type') }})
    union all
    select insurer_id, submission_id, 'claim_valuation', 'coverage_section', coverage_section
    from claims where coverage_section not in (select coverage_section from {{ ref('tax_coverage_section') }})
    union all
    select insurer_id, submission_id, 'claim_valuation', 'status', status
    from claims where status not in (select status from {{ ref('tax_claim_status') }})
    union all
    select insurer_id, submission_id, 'claim_valuation', 'currency', currency
    from claims where fx_rate is null
)

select
    insurer_id,
    submission_id,
    record_type,
    field,
    code,
    count(*) as n_rows
from problems
group by insurer_id, submission_id, record_type, field, code
