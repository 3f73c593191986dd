select
    submission_id,
    record_type,
    field,
    delivery,
    source,
    rows_accepted,
    rows_with_value
from {{ source('raw', 'submission_fields') }}
