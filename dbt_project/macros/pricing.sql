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

{#- Mean, the median, p90 and p99 (interpolated, as doubles) as one list <prefix>_quantiles (unpack
    with severity_quantiles), and max of an amount, columns named <prefix>_…. One quantile state per
    group instead of three: under a segment cube this is most of the model's memory. -#}
{% macro severity_stats(amount, prefix) -%}
    avg(cast({{ amount }} as double)) as {{ prefix }}_mean,
    {{ quantiles_of('cast(' ~ amount ~ ' as double)', [0.5, 0.9, 0.99]) }} as {{ prefix }}_quantiles,
    max({{ amount }}) as {{ prefix }}_max
{%- endmacro %}

{#- <prefix>_median, _p90, _p99 from the list severity_stats made, of relation `source`. -#}
{% macro severity_quantiles(source, prefix) -%}
    {{ source }}.{{ prefix }}_quantiles[1] as {{ prefix }}_median,
    {{ source }}.{{ prefix }}_quantiles[2] as {{ prefix }}_p90,
    {{ source }}.{{ prefix }}_quantiles[3] as {{ prefix }}_p99,
{%- endmacro %}
