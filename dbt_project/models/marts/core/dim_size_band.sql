select
    size_band, band_type,
    cast(lower_bound as decimal(22, 2)) as lower_bound,
    cast(upper_bound as decimal(22, 2)) as upper_bound,
    name_zh, name_en, is_sme, sort_order,
    cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_size_band') }}
