select
    submission_id,
    insurer_id,
    source_file,
    file_bytes,
    record_types,
    status,
    error,
    warnings,
    rows_delivered,
    rows_loaded,
    rows_quarantined,
    mapping_version,
    contract_version,
    ingested_at
from {{ source('raw', 'submissions') }}
