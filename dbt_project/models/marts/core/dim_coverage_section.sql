select coverage_section, party, name_zh, name_en, cast(taxonomy_version as varchar) as taxonomy_version
from {{ ref('tax_coverage_section') }}
