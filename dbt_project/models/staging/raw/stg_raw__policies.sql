select
    {{ lineage_columns() }},
    admitted.admitted_at,
    policy_key,
    insured_key,
    industry_code,
    left(industry_code, 2) as industry_division,
    sector_code as sector_label_code,
    region_code,
    left(region_code, 2) as province_code,
    annual_revenue,
    employee_count,
    product_type,
    coverage_sections,
    inception_date,
    expiry_date,
    limit_amount,
    deductible,
    written_premium,
    upper(currency) as currency,
    is_standalone,
    pilot_code,
    risk_assessment_score
from {{ source('raw', 'policies') }}
-- Only rows of admitted submissions (passed the submission gate, or released by an operator).
inner join (
    select submission_id, admitted_at
    from {{ source('control', 'submission_gate') }}
    where {{ is_admitted('status') }}
) as admitted using (submission_id)
