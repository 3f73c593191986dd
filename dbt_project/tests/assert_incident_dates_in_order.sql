-- A failing row is an insurer incident (latest version) whose dates are out of order: it was
-- discovered before it occurred, reported before it was discovered or occurred, or resolved before
-- it occurred. Discovery and resolution dates are optional; a missing one is not checked.
select
    insurer_id,
    submission_id,
    incident_key,
    occurred_date,
    discovered_date,
    reported_date,
    resolved_date
from {{ ref('int_incidents__latest') }}
where discovered_date < occurred_date
    or reported_date < discovered_date
    or reported_date < occurred_date
    or resolved_date < occurred_date
