{#- The regulator pack's cuts (var regulator_pack_cuts) and how each is aggregated (marts/regulator). -#}

{#- Dimensions of the pack's atoms: a policy's (reg_period_policies and every loss record), an
    incident's and a claim's (reg_period_losses). -#}
{% macro pack_policy_dimensions() -%}
    {{ return(['sector', 'product_type', 'province', 'pilot', 'size']) }}
{%- endmacro %}

{% macro pack_incident_dimensions() -%}
    {{ return(pack_policy_dimensions() + ['incident_type']) }}
{%- endmacro %}

{% macro pack_claim_dimensions() -%}
    {{ return(pack_incident_dimensions() + ['severity_band']) }}
{%- endmacro %}

{#- The cuts, validated: one or two known dimensions each, every cut once. -#}
{% macro pack_cuts() -%}
    {%- set cuts = var('regulator_pack_cuts') -%}
    {%- set seen = [] -%}
    {%- for cut in cuts -%}
        {%- if cut | length not in [1, 2] or cut | reject('in', pack_claim_dimensions()) | list | length > 0 -%}
            {{ exceptions.raise_compiler_error('var regulator_pack_cuts: ' ~ cut ~ ' is not one or two of ' ~ pack_claim_dimensions() | join(', ')) }}
        {%- endif -%}
        {%- if pack_cut_id(cut) in seen -%}
            {{ exceptions.raise_compiler_error('var regulator_pack_cuts: ' ~ cut ~ ' is listed twice') }}
        {%- endif -%}
        {%- do seen.append(pack_cut_id(cut)) -%}
    {%- endfor -%}
    {{ return(cuts) }}
{%- endmacro %}

{#- A cut's name: its dimensions joined by '__' (sector__product_type). -#}
{% macro pack_cut_id(cut) -%}
    {{ return(cut | join('__')) }}
{%- endmacro %}

{#- Columns identifying a cell of the cut: cut_id, row_dim, column_dim (null for a one-way cut),
    row_code and column_code ('total' on a margin, and always for a one-way cut). A key that is
    null outside a margin is a row of an empty period's outer join, dropped by the caller. -#}
{% macro pack_cell_keys(cut) -%}
    '{{ pack_cut_id(cut) }}' as cut_id,
    '{{ cut[0] }}' as row_dim,
    {% if cut | length == 2 %}'{{ cut[1] }}'{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as column_dim,
    case when grouping({{ cut[0] }}) = 1 then 'total' else {{ cut[0] }} end as row_code,
    {% if cut | length == 2 -%}
    case when grouping({{ cut[1] }}) = 1 then 'total' else {{ cut[1] }} end
    {%- else %}'total'{% endif %} as column_code
{%- endmacro %}

{#- The grouping sets of a cut: its cells and every margin, each with `extra` columns. -#}
{% macro pack_grouping_sets(cut, extra) -%}
    {%- set sets = [cut, [cut[0]], [cut[1]], []] if cut | length == 2 else [cut, []] -%}
    grouping sets (
        {%- for s in sets %}
        ({{ (extra + s) | join(', ') }}){{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}
