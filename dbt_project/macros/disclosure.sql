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

{#- Who is behind each cell of a segment cube, for the published form of an aggregate (DESIGN.md §5:
    a published cell covers at least var('publication_k_insureds') insureds and
    var('publication_k_insurers') insurers, none of which holds more than
    var('publication_dominance_share') of its amount). `source` is a CTE with the cell's `keys`
    (period, age …), the raw `dims` (default: the segment, policy_segment), `insurer_id`, `insured_key` and
    the `amount` the dominance rule weighs. Emits the CTEs <name>_by_insurer, <name>_distinct,
    <name>_multiplicity, <name>_pairs, <name>_small, <name>_exact, <name>_insureds and <name> — keys, the dims ('all' when rolled up, as
    segment_columns), cell_insureds (exact below k, a lower bound of at least k otherwise), cell_insurers,
    cell_top_share — each followed by a comma. A hash collision of two insureds counts them once: never more. -#}
{% macro cell_contributors(name, source, keys, amount, dims=none) -%}
{%- set dims = dims or segment_dimensions() -%}
{%- set labelled -%}
    {%- for d in dims %}
        case when grouping({{ d }}) = 1 then 'all' else {{ d }} end as {{ d }},
    {%- endfor %}
{%- endset -%}
{{ name }}_by_insurer as (
    select
        {% for k in keys %}{{ k }},
        {% endfor -%}
        {{ labelled }}
        insurer_id,
        sum({{ amount }}) as amount
    from {{ source }}
    group by {% for k in keys %}{{ k }}, {% endfor %}insurer_id, cube({{ dims | join(', ') }})
),

-- Distinct insureds, exact below var('publication_k_insureds') and a lower bound otherwise. Each insured
-- is counted once per finest cell (<name>_distinct); in a rolled-up cell it appears at most
-- `per_insured` times (the most finest cells one insured holds under one key), so a cell of at least
-- k × per_insured such pairs covers at least k insureds (pairs / per_insured). Only the cells below
-- that are counted exactly, by joining their pairs back per grouping set: plain joins and group-bys,
-- which spill to disk, not a distinct set per cell of the cube (the monthly exposure of a
-- million-policy market does not fit the memory cap so).
{{ name }}_distinct as (
    select
        {% for k in keys %}{{ k }},
        {% endfor -%}
        {% for d in dims %}{{ d }},
        {% endfor -%}
        {{ stable_hash('insured_key') }} as insured_hash
    from {{ source }}
    group by {% for k in keys %}{{ k }}, {% endfor %}{% for d in dims %}{{ d }}, {% endfor %}{{ stable_hash('insured_key') }}
),

{{ name }}_multiplicity as (
    select coalesce(max(cells), 1) as per_insured
    from (
        select count(*) as cells
        from {{ name }}_distinct
        group by {% for k in keys %}{{ k }}, {% endfor %}insured_hash
    )
),

{{ name }}_pairs as (
    select
        {% for k in keys %}{{ k }},
        {% endfor -%}
        {{ labelled }}
        count(*) as pairs
    from {{ name }}_distinct
    group by {% for k in keys %}{{ k }}, {% endfor %}cube({{ dims | join(', ') }})
),

{{ name }}_small as (
    select *
    from {{ name }}_pairs
    where pairs < {{ var('publication_k_insureds') }} * (select per_insured from {{ name }}_multiplicity)
),

{{ name }}_exact as (
    {%- for mask in range(2 ** (dims | length)) %}
    {%- set kept = [] %}
    {%- for d in dims %}{% if (mask // (2 ** loop.index0)) % 2 == 1 %}{% do kept.append(d) %}{% endif %}{% endfor %}
    select
        {% for k in keys %}small.{{ k }},
        {% endfor -%}
        {% for d in dims %}small.{{ d }},
        {% endfor -%}
        count(distinct pairs.insured_hash) as cell_insureds
    from {{ name }}_small as small
    inner join {{ name }}_distinct as pairs
        on true
        {% for k in keys %}and pairs.{{ k }} = small.{{ k }}
        {% endfor -%}
        {% for d in dims %}and {% if d in kept %}pairs.{{ d }} = small.{{ d }}{% else %}small.{{ d }} = 'all'{% endif %}
        {% endfor %}
    where true
        {% for d in kept %}and small.{{ d }} <> 'all'
        {% endfor %}
    group by {% for k in keys %}small.{{ k }}, {% endfor %}{% for d in dims %}small.{{ d }}{{ ', ' if not loop.last }}{% endfor %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{{ name }}_insureds as (
    select
        {% for k in keys %}pairs.{{ k }},
        {% endfor -%}
        {% for d in dims %}pairs.{{ d }},
        {% endfor -%}
        coalesce(exact.cell_insureds, {{ integer_div('pairs.pairs', '(select per_insured from ' ~ name ~ '_multiplicity)') }}) as cell_insureds
    from {{ name }}_pairs as pairs
    left join {{ name }}_exact as exact
        using ({% for k in keys %}{{ k }}, {% endfor %}{{ dims | join(', ') }})
),

{{ name }} as (
    select
        {% for k in keys %}by_insurer.{{ k }},
        {% endfor -%}
        {% for d in dims %}by_insurer.{{ d }},
        {% endfor -%}
        any_value(insureds.cell_insureds) as cell_insureds,
        count(*) as cell_insurers,
        case when sum(by_insurer.amount) > 0 then max(by_insurer.amount) / sum(by_insurer.amount) end as cell_top_share
    from {{ name }}_by_insurer as by_insurer
    inner join {{ name }}_insureds as insureds
        using ({% for k in keys %}{{ k }}, {% endfor %}{{ dims | join(', ') }})
    group by {% for k in keys %}by_insurer.{{ k }}, {% endfor %}{% for d in dims %}by_insurer.{{ d }}{{ ', ' if not loop.last }}{% endfor %}
),
{%- endmacro %}

{#- The disclosure status of a cell from cell_contributors' columns (prefix: relation alias): the first
    rule it fails, or 'published'. The publication suppresses the figures of a cell that fails, and
    further cells so that no suppressed figure follows from the published ones by subtraction. -#}
{% macro cell_status(prefix) -%}
    case
        when coalesce({{ prefix }}.cell_insureds, 0) < {{ var('publication_k_insureds') }} then 'few_insureds'
        when coalesce({{ prefix }}.cell_insurers, 0) < {{ var('publication_k_insurers') }} then 'few_insurers'
        when {{ prefix }}.cell_top_share > {{ var('publication_dominance_share') }} then 'dominance'
        else 'published'
    end
{%- endmacro %}
