{#- DuckDB-only SQL, kept here so another engine (Spark, Trino) needs only these rewritten. -#}

{#- Every day from start to end inclusive, as column date_day. -#}
{% macro date_spine_days(start_date, end_date) -%}
    select cast(d as date) as date_day
    from range(cast('{{ start_date }}' as date), cast('{{ end_date }}' as date) + interval 1 day, interval 1 day) as t(d)
{%- endmacro %}

{#- One row per element of a list column: select ..., <alias> from <relation> cross join unnest. -#}
{% macro unnest_list(column) -%}
    unnest({{ column }})
{%- endmacro %}

{#- Product of a numeric aggregate (chain-ladder development factors). -#}
{% macro product_of(expr) -%}
    product({{ expr }})
{%- endmacro %}

{#- Continuous quantile q (0–1) of an aggregate's values (interpolated, as numpy's default). -#}
{% macro quantile_of(expr, q) -%}
    quantile_cont({{ expr }}, {{ q }})
{%- endmacro %}

{#- Several continuous quantiles of the same values as one list (element i = qs[i - 1]): one
    aggregate state holds the values once, where one quantile_of per q would hold them per q. -#}
{% macro quantiles_of(expr, qs) -%}
    quantile_cont({{ expr }}, [{{ qs | join(', ') }}])
{%- endmacro %}
