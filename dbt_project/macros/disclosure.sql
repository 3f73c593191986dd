{#- The disclosure-level CTEs of a published row-level mart (as pub_fct_policies does for policies):
    each row of `source` (a CTE with `key`, `insured` and `insurer` columns) is placed at the finest
    level of `levels` (lists of quasi-identifier columns) whose combination, over the rows no finer
    level placed, covers at least var('publication_k_insureds') insureds and
    var('publication_k_insurers') insurers. Rows no level places get level len(levels) (everything
    suppressed); when they alone fail, the rows of the last level join them. Emits the CTEs
    remaining_i, classes_i, placed_i, placed, placed_or_not, residual and `levelled` (source's columns
    and disclosure_level), ending with a comma. -#}
{% macro disclosure_levelled(source, key, insured, insurer, levels) %}
{%- for columns in levels %}
{%- set i = loop.index0 %}
remaining_{{ i }} as (
    {%- if i == 0 %}
    select * from {{ source }}
    {%- else %}
    select * from remaining_{{ i - 1 }}
    where {{ key }} not in (select {{ key }} from placed_{{ i - 1 }})
    {%- endif %}
),

classes_{{ i }} as (
    select {{ columns | join(', ') if columns else '1 as all_rows' }}
    from remaining_{{ i }}
    {%- if columns %}
    group by {{ columns | join(', ') }}
    {%- endif %}
    having count(distinct {{ insured }}) >= {{ var('publication_k_insureds') }}
        and count(distinct {{ insurer }}) >= {{ var('publication_k_insurers') }}
),

placed_{{ i }} as (
    select remaining_{{ i }}.{{ key }}, {{ i }} as disclosure_level
    from remaining_{{ i }}
    inner join classes_{{ i }}
        on {% for c in columns %}remaining_{{ i }}.{{ c }} is not distinct from classes_{{ i }}.{{ c }}{% if not loop.last %}
        and {% endif %}{% else %}true{% endfor %}
),
{% endfor %}
placed as (
    {%- for columns in levels %}
    select {{ key }}, disclosure_level from placed_{{ loop.index0 }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

placed_or_not as (
    select {{ source }}.*, coalesce(placed.disclosure_level, {{ levels | length }}) as placed_level
    from {{ source }}
    left join placed on {{ source }}.{{ key }} = placed.{{ key }}
),

residual as (
    select
        count(*) = 0
        or (count(distinct {{ insured }}) >= {{ var('publication_k_insureds') }}
            and count(distinct {{ insurer }}) >= {{ var('publication_k_insurers') }}) as passes
    from placed_or_not
    where placed_level = {{ levels | length }}
),

levelled as (
    select
        placed_or_not.*,
        cast(case
            when placed_level = {{ levels | length - 1 }} and not (select passes from residual)
                then {{ levels | length }}
            else placed_level
        end as integer) as disclosure_level
    from placed_or_not
),
{% endmacro %}
