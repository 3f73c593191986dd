select
    incident_type, name_zh, name_en, is_malicious, link_group, veris_actor, veris_action, veris_variety,
    cast(taxonomy_version as {{ dbt.type_string() }}) as taxonomy_version
from {{ ref('tax_incident_type') }}
