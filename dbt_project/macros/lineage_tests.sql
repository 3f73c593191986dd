{#- Sector-level tests name the submissions behind their failing rows.

    When the tested relation carries row lineage (both insurer_id and submission_id), every failing
    row of a test carries them too, so the cycle can hold exactly the submissions whose rows fail
    and publish the rest (cyberclaims/orchestration/defs/transformation/assets.py, cyberclaims/quality/gate.py). dbt's
    built-in generic tests are overridden here through `dispatch` (dbt_project.yml: this project
    first in the search order); the project's own generic and singular tests select the columns
    themselves. Tests on aggregates (agg_*, fct_systemic_events, fct_loss_events, which gather
    several insurers' rows into one) and on seeds have no row lineage: their failures cannot be
    attributed to a submission, and stop publication as before.

    The columns are looked up when the test runs (adapter.get_columns_in_relation), so a model
    that gains or loses lineage columns needs no change here. -#}

{#- ['insurer_id', 'submission_id'] when the relation has both, else []. -#}
{% macro lineage_of(relation) -%}
    {%- if not execute or relation is string -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- if 'insurer_id' in names and 'submission_id' in names -%}
        {{ return(['insurer_id', 'submission_id']) }}
    {%- endif -%}
    {{ return([]) }}
{%- endmacro %}

{#- ", insurer_id, submission_id" (each qualified by `qualifier` when given) for the columns of
    lineage_of, or nothing. -#}
{% macro lineage_list(columns, qualifier=none) -%}
    {%- for column in columns %}, {{ qualifier ~ '.' if qualifier }}{{ column }}{% endfor -%}
{%- endmacro %}


{% macro default__test_not_null(model, column_name) %}
{%- set column_list = '*' if should_store_failures() else column_name ~ lineage_list(lineage_of(model)) %}

select {{ column_list }}
from {{ model }}
where {{ column_name }} is null

{% endmacro %}


{#- With lineage, a failing row is each row of a duplicated value (so every submission carrying the
    value is named), with the number of rows sharing it. -#}
{% macro default__test_unique(model, column_name) %}
{%- set lineage = lineage_of(model) %}
{%- if lineage %}

with tested as (
    select {{ column_name }} as unique_field{{ lineage_list(lineage) }}
    from {{ model }}
    where {{ column_name }} is not null
),

duplicated as (
    select unique_field, count(*) as n_records
    from tested
    group by unique_field
    having count(*) > 1
)

select tested.unique_field, duplicated.n_records{{ lineage_list(lineage, 'tested') }}
from tested
inner join duplicated on tested.unique_field = duplicated.unique_field

{%- else %}

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1

{%- endif %}
{% endmacro %}


{#- With lineage, a failing row is a value outside the set per insurer and submission. -#}
{% macro default__test_accepted_values(model, column_name, values, quote=True) %}
{%- set lineage = lineage_of(model) %}

with all_values as (

    select
        {{ column_name }} as value_field{{ lineage_list(lineage) }},
        count(*) as n_records

    from {{ model }}
    group by {{ column_name }}{{ lineage_list(lineage) }}

)

select *
from all_values
where value_field not in (
    {% for value in values -%}
        {% if quote -%}
        '{{ value }}'
        {%- else -%}
        {{ value }}
        {%- endif -%}
        {%- if not loop.last -%},{%- endif %}
    {%- endfor %}
)

{% endmacro %}


{% macro default__test_relationships(model, column_name, to, field) %}
{%- set lineage = lineage_of(model) %}

with child as (
    select {{ column_name }} as from_field{{ lineage_list(lineage) }}
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
)

select
    from_field{{ lineage_list(lineage, 'child') }}

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
