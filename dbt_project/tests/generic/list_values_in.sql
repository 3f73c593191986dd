{#- Every element of a list column is a key of the reference model (relationships for list columns,
    e.g. a policy's coverage_sections). A failing row is one element that the reference does not
    hold, with its insurer and submission when the model has row lineage. -#}
{% test list_values_in(model, column_name, to, field) %}
    {%- set lineage = lineage_of(model) %}
    with elements as (
        select {{ unnest_list(column_name) }} as element{{ lineage_list(lineage) }}
        from {{ model }}
    )

    select elements.element{{ lineage_list(lineage, 'elements') }}
    from elements
    left join {{ to }} as reference
        on elements.element = reference.{{ field }}
    where elements.element is not null
        and reference.{{ field }} is null
{% endtest %}
