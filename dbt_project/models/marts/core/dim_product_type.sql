select product_type, name_zh, name_en, policy_article, cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_product_type') }}
