{#- Engine-specific SQL. Every macro here dispatches (adapter.dispatch, namespace cyberclaims) to
    <engine>__<name>: the duckdb__ implementations are what the warehouse runs; default__ is the
    standard-SQL form where one exists, else a compile error naming the macro, so another engine
    (Spark, Trino) needs only its own <engine>__ implementations added here, and no model changes. -#}

{% macro _not_implemented(name) -%}
    {{ exceptions.raise_compiler_error(name ~ ' has no implementation for the ' ~ target.type ~ ' adapter: add ' ~ target.type ~ '__' ~ name ~ ' in macros/duckdb/engine_specific.sql') }}
{%- endmacro %}

{#- Every day from start to end inclusive, as column date_day. -#}
{% macro date_spine_days(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine_days', 'cyberclaims')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine_days(start_date, end_date) -%}
    {{ _not_implemented('date_spine_days') }}
{%- endmacro %}

{% macro duckdb__date_spine_days(start_date, end_date) -%}
    select cast(d as date) as date_day
    from range(cast('{{ start_date }}' as date), cast('{{ end_date }}' as date) + interval 1 day, interval 1 day) as t(d)
{%- endmacro %}

{#- One row per element of a list column: select ..., <alias> from <relation> cross join unnest. -#}
{% macro unnest_list(column) -%}
    {{ return(adapter.dispatch('unnest_list', 'cyberclaims')(column)) }}
{%- endmacro %}

{% macro default__unnest_list(column) -%}
    {{ _not_implemented('unnest_list') }}
{%- endmacro %}

{% macro duckdb__unnest_list(column) -%}
    unnest({{ column }})
{%- endmacro %}

{#- Element i (1-based) of a list value. -#}
{% macro list_element(list, i) -%}
    {{ return(adapter.dispatch('list_element', 'cyberclaims')(list, i)) }}
{%- endmacro %}

{% macro default__list_element(list, i) -%}
    element_at({{ list }}, {{ i }})
{%- endmacro %}

{% macro duckdb__list_element(list, i) -%}
    {{ list }}[{{ i }}]
{%- endmacro %}

{#- Product of a numeric aggregate (chain-ladder development factors). -#}
{% macro product_of(expr) -%}
    {{ return(adapter.dispatch('product_of', 'cyberclaims')(expr)) }}
{%- endmacro %}

{% macro default__product_of(expr) -%}
    {{ _not_implemented('product_of') }}
{%- endmacro %}

{% macro duckdb__product_of(expr) -%}
    product({{ expr }})
{%- endmacro %}

{#- Continuous quantile q (0–1) of an aggregate's values (interpolated, as numpy's default). -#}
{% macro quantile_of(expr, q) -%}
    {{ return(adapter.dispatch('quantile_of', 'cyberclaims')(expr, q)) }}
{%- endmacro %}

{% macro default__quantile_of(expr, q) -%}
    percentile_cont({{ q }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__quantile_of(expr, q) -%}
    quantile_cont({{ expr }}, {{ q }})
{%- endmacro %}

{#- Several continuous quantiles of the same values as one list (element i = qs[i - 1], read with
    list_element): one aggregate state holds the values once, where one quantile_of per q would hold
    them per q. -#}
{% macro quantiles_of(expr, qs) -%}
    {{ return(adapter.dispatch('quantiles_of', 'cyberclaims')(expr, qs)) }}
{%- endmacro %}

{% macro default__quantiles_of(expr, qs) -%}
    {{ _not_implemented('quantiles_of') }}
{%- endmacro %}

{% macro duckdb__quantiles_of(expr, qs) -%}
    quantile_cont({{ expr }}, [{{ qs | join(', ') }}])
{%- endmacro %}

{#- The rows of `relation` that come first in their partition (columns `partition_by`, a list) by
    `order_by`: one per partition, every column of the relation. -#}
{% macro first_row_per(relation, partition_by, order_by) -%}
    {{ return(adapter.dispatch('first_row_per', 'cyberclaims')(relation, partition_by, order_by)) }}
{%- endmacro %}

{% macro default__first_row_per(relation, partition_by, order_by) -%}
    {{ _not_implemented('first_row_per') }}
{%- endmacro %}

{% macro duckdb__first_row_per(relation, partition_by, order_by) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ partition_by | join(', ') }}
        order by {{ order_by }}
    ) = 1
{%- endmacro %}

{#- ISO day of week of a date, 1 = Monday … 7 = Sunday. -#}
{% macro iso_day_of_week(date) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'cyberclaims')(date)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date) -%}
    {{ _not_implemented('iso_day_of_week') }}
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date) -%}
    extract(isodow from {{ date }})
{%- endmacro %}

{#- The engine's own hash of a value, stable across runs: a deterministic but arbitrary order (which
    claims' coverage section is withheld). Another engine's hash orders differently. -#}
{% macro stable_hash(expr) -%}
    {{ return(adapter.dispatch('stable_hash', 'cyberclaims')(expr)) }}
{%- endmacro %}

{% macro default__stable_hash(expr) -%}
    {{ _not_implemented('stable_hash') }}
{%- endmacro %}

{% macro duckdb__stable_hash(expr) -%}
    hash({{ expr }})
{%- endmacro %}

{#- The values of an aggregate's rows where `condition` holds, as one list in ascending order (null
    when no row qualifies). -#}
{% macro sorted_list_of(expr, condition='true') -%}
    {{ return(adapter.dispatch('sorted_list_of', 'cyberclaims')(expr, condition)) }}
{%- endmacro %}

{% macro default__sorted_list_of(expr, condition) -%}
    {{ _not_implemented('sorted_list_of') }}
{%- endmacro %}

{% macro duckdb__sorted_list_of(expr, condition) -%}
    list({{ expr }} order by {{ expr }}) filter (where {{ condition }})
{%- endmacro %}

{#- Number of elements of a list value. -#}
{% macro list_length(list) -%}
    {{ return(adapter.dispatch('list_length', 'cyberclaims')(list)) }}
{%- endmacro %}

{% macro default__list_length(list) -%}
    cardinality({{ list }})
{%- endmacro %}

{% macro duckdb__list_length(list) -%}
    len({{ list }})
{%- endmacro %}

{#- Integer division of two integer values (an integer-valued DECIMAL too), truncated toward zero. -#}
{% macro integer_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('integer_div', 'cyberclaims')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__integer_div(numerator, denominator) -%}
    {{ _not_implemented('integer_div') }}
{%- endmacro %}

{% macro duckdb__integer_div(numerator, denominator) -%}
    cast(cast({{ numerator }} as hugeint) // cast({{ denominator }} as hugeint) as bigint)
{%- endmacro %}
