{#- Every element of a list column is a key of the reference model (relationships for list columns,
    e.g. a policy's coverage_sections). A failing row is one element that the reference does not hold. -#}
{% test list_values_in(model, column_name, to, field) %}
    with elements as (
        select {{ unnest_list(column_name) }} as element
        from {{ model }}
    )

    select elements.element
    from elements
    left join {{ to }} as reference
        on elements.element = reference.{{ field }}
    where elements.element is not null
        and reference.{{ field }} is null
{% endtest %}
