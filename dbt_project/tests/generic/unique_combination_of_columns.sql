{#- The grain holds: no two rows share the same values of all the given columns. A failing row is
    one combination that occurs more than once, with its count; when the model has row lineage, one
    failing row per row of the combination, with its insurer and submission. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns_csv = combination_of_columns | join(', ') %}
    {%- set lineage = lineage_of(model) %}
    {%- if lineage %}
    with duplicated as (
        select {{ columns_csv }}, count(*) as n_rows
        from {{ model }}
        group by {{ columns_csv }}
        having count(*) > 1
    )

    select {% for c in combination_of_columns %}tested.{{ c }}, {% endfor %}duplicated.n_rows{{ lineage_list(lineage, 'tested') }}
    from {{ model }} as tested
    inner join duplicated
        on {% for c in combination_of_columns %}{{ 'and ' if not loop.first }}tested.{{ c }} is not distinct from duplicated.{{ c }} {% endfor %}
    {%- else %}
    select {{ columns_csv }}, count(*) as n_rows
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1
    {%- endif %}
{% endtest %}
