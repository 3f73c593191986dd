select
    {{ lineage_columns() }},
    admitted.admitted_at,
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
-- Only rows of admitted submissions (passed the submission gate, or released by an operator).
inner join (
    select submission_id, admitted_at
    from {{ source('control', 'submission_gate') }}
    where {{ is_admitted('status') }}
) as admitted using (submission_id)
