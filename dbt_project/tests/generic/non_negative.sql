{#- An amount or count that cannot be negative. A failing row is a row where the column is below
    zero; null passes (pair with not_null where the value is required). -#}
{% test non_negative(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}
