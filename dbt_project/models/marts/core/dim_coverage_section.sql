select coverage_section, party, name_zh, name_en, cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_coverage_section') }}
