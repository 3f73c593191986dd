-- Every pilot programme of the policies in the database (macro pilot_programme of the pilot codes).
select distinct {{ pilot_programme('pilot_code') }} as pilot_programme
from {{ ref('fct_policies') }}
where pilot_code is not null
