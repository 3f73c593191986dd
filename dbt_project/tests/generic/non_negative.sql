{#- An amount or count that cannot be negative. A failing row is a row where the column is below
    zero, with its insurer and submission when the model has row lineage; null passes (pair with
    not_null where the value is required). -#}
{% test non_negative(model, column_name) %}
    select {{ column_name }}{{ lineage_list(lineage_of(model)) }}
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}
