select
    submissions.submission_id,
    submissions.insurer_id,
    submissions.source_file,
    submissions.file_bytes,
    submissions.record_types,
    submissions.status,
    submissions.error,
    submissions.warnings,
    submissions.rows_delivered,
    submissions.rows_loaded,
    submissions.rows_quarantined,
    submissions.mapping_version,
    submissions.contract_version,
    submissions.ingested_at,
    gate.status as gate_status,
    gate.reasons as gate_reasons,
    gate.admitted_at
from {{ source('control', 'submissions') }} as submissions
left join {{ source('control', 'submission_gate') }} as gate on gate.submission_id = submissions.submission_id
