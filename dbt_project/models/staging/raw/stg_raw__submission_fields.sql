select
    submission_id,
    record_type,
    field,
    delivery,
    source,
    rows_accepted,
    rows_with_value
from {{ source('control', 'submission_fields') }}
