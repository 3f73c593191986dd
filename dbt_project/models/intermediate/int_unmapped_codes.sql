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

{#- One check per (record type, field): the rows of `from` whose `column` (default the field) is not a
    key of the taxonomy seed (the seed's column of the same name unless `key` says otherwise), reported
    with `code` (default the field); `or_null` also reports a null `column`; `missing` instead reports
    the rows where that column is null (an amount whose currency has no FX rate for the month). -#}
{%- set checks = [
    {'record_type': 'policy', 'from': 'policies', 'field': 'product_type', 'taxonomy': 'tax_product_type'},
    {'record_type': 'policy', 'from': 'policies', 'field': 'sector_code', 'taxonomy': 'tax_sector',
     'code': 'coalesce(sector_label_code, industry_code)', 'or_null': true},
    {'record_type': 'policy', 'from': 'policies', 'field': 'region_code', 'taxonomy': 'tax_region',
     'column': 'province_code'},
    {'record_type': 'policy', 'from': 'policies', 'field': 'currency', 'missing': 'fx_rate'},
    {'record_type': 'policy', 'from': 'coverage', 'field': 'coverage_sections', 'taxonomy': 'tax_coverage_section',
     'code': 'code', 'column': 'code', 'key': 'coverage_section'},
    {'record_type': 'incident', 'from': 'incidents', 'field': 'incident_type', 'taxonomy': 'tax_incident_type'},
    {'record_type': 'incident', 'from': 'incidents', 'field': 'attack_vector', 'taxonomy': 'tax_attack_vector'},
    {'record_type': 'incident', 'from': 'data_types', 'field': 'data_types', 'taxonomy': 'tax_data_type',
     'code': 'code', 'column': 'code', 'key': 'data_type'},
    {'record_type': 'claim_valuation', 'from': 'claims', 'field': 'coverage_section', 'taxonomy': 'tax_coverage_section'},
    {'record_type': 'claim_valuation', 'from': 'claims', 'field': 'status', 'taxonomy': 'tax_claim_status'},
    {'record_type': 'claim_valuation', 'from': 'claims', 'field': 'currency', 'missing': 'fx_rate'},
] %}

problems as (
    {%- for c in checks %}
    {%- set column = c.get('column', c.field) %}
    select
        insurer_id,
        submission_id,
        '{{ c.record_type }}' as record_type,
        '{{ c.field }}' as field,
        {{ c.get('code', c.field) }} as code
    from {{ c['from'] }}
    {%- if c.get('missing') %}
    where {{ c.missing }} is null
    {%- else %}
    where {% if c.get('or_null') %}{{ column }} is null or {% endif -%}
        {{ column }} not in (select {{ c.get('key', column) }} from {{ ref(c.taxonomy) }})
    {%- endif %}
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
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
