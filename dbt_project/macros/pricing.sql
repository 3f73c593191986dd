{#- Building blocks shared by the pricing marts. -#}

{#- Claims with the segment of their policy ('unknown' when the policy is not in the database). -#}
{% macro segmented_claims(columns) -%}
    select
        {% for c in columns %}claims.{{ c }},
        {% endfor -%}
        {{ policy_segment('policies') }}
    from {{ ref('fct_claims') }} as claims
    left join {{ ref('fct_policies') }} as policies on policies.policy_key = claims.policy_key
{%- endmacro %}

{#- agg_loss_triangles in long form: one row per cell and measure (paid, incurred) with its value. -#}
{% macro triangle_cells() -%}
    {%- for measure in ['paid', 'incurred'] %}
    select
        accident_period_type, accident_period_start, development_age_months,
        {{ segment_dimensions() | join(', ') }}, '{{ measure }}' as measure, {{ measure }}_cny as value
    from {{ ref('agg_loss_triangles') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Mean, median, p90, p99 (interpolated, as doubles) and max of an amount, columns named <prefix>_…. -#}
{% macro severity_stats(amount, prefix) -%}
    avg(cast({{ amount }} as double)) as {{ prefix }}_mean,
    {{ quantile_of('cast(' ~ amount ~ ' as double)', 0.5) }} as {{ prefix }}_median,
    {{ quantile_of('cast(' ~ amount ~ ' as double)', 0.9) }} as {{ prefix }}_p90,
    {{ quantile_of('cast(' ~ amount ~ ' as double)', 0.99) }} as {{ prefix }}_p99,
    max({{ amount }}) as {{ prefix }}_max
{%- endmacro %}
