select province_code, name_zh, name_en, region_group, cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_region') }}
