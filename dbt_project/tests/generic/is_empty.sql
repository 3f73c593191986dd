{#- The model must hold no rows (e.g. a list of problems that is empty on healthy data).
    Every row of the model is a failing row (with the model's insurer_id and submission_id, where
    it has them). -#}
{% test is_empty(model) %}
    select * from {{ model }}
{% endtest %}
