select
    {{ lineage_columns() }},
    claim_key,
    incident_key,
    policy_key,
    coverage_section,
    status,
    report_date,
    closed_date,
    valuation_date,
    paid_indemnity,
    paid_expense,
    case_reserve,
    coalesce(recoveries, 0) as recoveries,
    upper(currency) as currency
from {{ source('raw', 'claim_valuations') }}
