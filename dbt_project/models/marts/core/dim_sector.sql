select sector_code, name_zh, name_en, is_key_sector, is_pilot_sector, cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_sector') }}
