{#- The model must hold no rows (e.g. a list of problems that is empty on healthy data).
    Every row of the model is a failing row. -#}
{% test is_empty(model) %}
    select * from {{ model }}
{% endtest %}
