{#- Shared, engine-neutral building blocks. DuckDB-only SQL lives in macros/duckdb/. -#}

{#- "Latest submission wins": later ingestion first, then the later submission and source row. -#}
{% macro latest_first() -%}
    ingested_at desc, submission_id desc, source_row desc
{%- endmacro %}

{#- First day of the month of a date, as a date (the FX rule's key). -#}
{% macro month_of(column) -%}
    cast({{ dbt.date_trunc('month', column) }} as date)
{%- endmacro %}

{#- FX rule: amount × CNY-per-unit of the month, rounded half away from zero to the fen (2 dp).
    The amount is widened first: decimal(18,2) × decimal(18,6) would otherwise be typed decimal(18,8)
    and overflow from ten billion up. -#}
{% macro to_cny(amount, rate) -%}
    cast(round(cast({{ amount }} as decimal(38, 2)) * {{ rate }}, 2) as decimal(18, 2))
{%- endmacro %}

{#- Incremental models process only rows admitted after what the model already holds: `column` of
    the input against the largest `this_column` (default: the same name) of the model. Admission, not
    ingestion, is the clock: a submission held by the gate and released later is new when released. -#}
{% macro only_new_submissions(column='admitted_at', qualifier=none, this_column=none) -%}
    {% if is_incremental() -%}
    where {{ qualifier ~ '.' if qualifier }}{{ column }} > (
        select coalesce(max({{ this_column or column }}), cast('1900-01-01' as timestamp)) from {{ this }}
    )
    {%- endif %}
{%- endmacro %}

{#- The CTEs `changed`, `versions` and `ranked` of an incremental "latest version wins" model over a
    staging relation: the keys that submissions admitted since the last run mention, every admitted
    version of those keys (all keys on a full build), ranked latest first (version_rank), with
    changed_at = the latest admission touching the key (the watermark). -#}
{% macro ranked_admitted_versions(relation, keys) -%}
{%- set key_list = keys | join(', ') -%}
changed as (
    select distinct {{ key_list }} from {{ relation }}
    {{ only_new_submissions('admitted_at', this_column='changed_at') }}
),

versions as (
    select delivered.* from {{ relation }} as delivered
    {% if is_incremental() -%}
    inner join changed using ({{ key_list }})
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by {{ key_list }} order by {{ latest_first() }}) as version_rank,
        max(admitted_at) over (partition by {{ key_list }}) as changed_at
    from versions
)
{%- endmacro %}

{#- Deterministic surrogate id: hash of the parts joined by '|'. -#}
{% macro surrogate_id(parts) -%}
    {%- set fields = [] -%}
    {%- for part in parts -%}
        {%- if not loop.first %}{% do fields.append("'|'") %}{% endif -%}
        {%- do fields.append("coalesce(cast(" ~ part ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}

{#- Lineage every canonical row carries from ingestion. -#}
{% macro lineage_columns() -%}
    insurer_id,
    submission_id,
    source_file,
    source_row,
    ingested_at,
    mapping_version
{%- endmacro %}

{#- Pricing segments: every combination of these dimensions is published (a CUBE); a dimension
    rolled up reads 'all'. -#}
{% macro segment_dimensions() -%}
    {{ return(['sector_code', 'size_band', 'product_type', 'province_code', 'pilot_cohort']) }}
{%- endmacro %}

{% macro segment_columns() -%}
    {%- for d in segment_dimensions() %}
    case when grouping({{ d }}) = 1 then 'all' else {{ d }} end as {{ d }},
    {%- endfor %}
{%- endmacro %}

{% macro segment_cube() -%}
    cube({{ segment_dimensions() | join(', ') }})
{%- endmacro %}

{#- The segment of a policy row (alias `policies`, null when the claim's or incident's policy is not
    in the database): unknown values are 'unknown', no pilot is 'none'. One definition per dimension,
    used by the pricing marts (segment_dimensions) and the regulator marts (pack_segment_dimensions):
    - pilot_cohort (pricing) is the policy's pilot code as delivered (PILOT-2023-FIN);
    - pilot_programme (regulator pack, its table 4 "pilot cohort") is the programme the code belongs
      to, macro pilot_programme (PILOT-2023);
    - size_band (pricing) is the revenue band; enterprise_size (regulator pack) is 'sme' or 'large'
      from is_sme (revenue or headcount band). -#}
{% macro policy_segment(policies='policies', dimensions=none) -%}
    {%- set p = policies -%}
    {%- set expressions = {
        'sector_code': "coalesce(" ~ p ~ ".sector_code, 'unknown')",
        'size_band': "coalesce(" ~ p ~ ".revenue_band, 'unknown')",
        'product_type': "coalesce(" ~ p ~ ".product_type, 'unknown')",
        'province_code': "coalesce(" ~ p ~ ".province_code, 'unknown')",
        'pilot_cohort': "case when " ~ p ~ ".policy_key is null then 'unknown' else coalesce(" ~ p ~ ".pilot_code, 'none') end",
        'pilot_programme': "case when " ~ p ~ ".policy_key is null then 'unknown' else coalesce(" ~ pilot_programme(p ~ '.pilot_code') ~ ", 'none') end",
        'enterprise_size': "case when " ~ p ~ ".is_sme then 'sme' when not " ~ p ~ ".is_sme then 'large' else 'unknown' end",
    } -%}
    {%- for d in (dimensions or segment_dimensions()) %}
    {{ expressions[d] }} as {{ d }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The regulator pack's segment dimensions (marts/regulator). -#}
{% macro pack_segment_dimensions() -%}
    {{ return(['sector_code', 'product_type', 'province_code', 'pilot_programme', 'enterprise_size']) }}
{%- endmacro %}

{#- The pilot programme of a pilot code: the first group of var('pilot_programme_pattern') (a code the
    pattern does not match is a programme of its own; null stays null). -#}
{% macro pilot_programme(code) -%}
    coalesce(nullif(regexp_extract({{ code }}, '{{ var("pilot_programme_pattern") | replace("'", "''") }}', 1), ''), {{ code }})
{%- endmacro %}

{#- Earned premium (CNY) of `days` earned days of a term of `term_days` days with written premium
    `premium` (CNY, 2 dp): premium × days ÷ term, rounded half up to the fen, in exact integer
    arithmetic on fen (never through a double). -#}
{% macro earned_premium(premium, days, term_days) -%}
    cast(cast({{ integer_div('2 * cast(round(' ~ premium ~ ' * 100) as bigint) * ' ~ days ~ ' + ' ~ term_days, '2 * ' ~ term_days) }} as decimal(38, 0)) * 0.01 as decimal(20, 2))
{%- endmacro %}

{#- A submission's rows reach the models when its gate status admits them: passed the submission
    gate, or released by an operator (the same set as cyberclaims.quality.gate.ADMITTED). -#}
{% macro is_admitted(gate_status) -%}
    {{ gate_status }} in ('passed', 'released')
{%- endmacro %}

{#- Publication grid of an amount or a count (DESIGN.md §5: no insurer's limit ladder, no insured's
    exact figure at row level): the lower bound of its band on a common grid of steps × 10^n, with
    steps (1, 2, 5) for money (1, 2, 5, 10, 20, 50 … CNY) and (1,) for counts (1, 10, 100 …).
    0 stays 0, null stays null. -#}
{% macro grid_floor(value, steps=(1, 2, 5), type='decimal(18, 2)') -%}
    {%- set magnitude = 'power(10, floor(log10(' ~ value ~ ')))' -%}
    cast(case
        when {{ value }} is null then null
        when {{ value }} <= 0 then 0
        {%- for step in steps | reverse %}
        when {{ value }} >= {{ step }} * {{ magnitude }} then {{ step }} * {{ magnitude }}
        {%- endfor %}
        else {{ magnitude }}
    end as {{ type }})
{%- endmacro %}

{#- An amount rounded to `digits` significant figures (DESIGN.md §5: no insurer's rounding pattern at
    row level): a reserve of EUR 2,200 converted at one month's rate is CNY 17,099.99 on every claim
    that insurer reserved so, a fen pattern no CNY insurer shares; at three significant figures it is
    17,100 like a reserve written in CNY. Exact decimal rounding, half away from zero (round() with a
    constant scale per magnitude); 0 stays 0, null stays null. At most 0.5 % of the amount. -#}
{% macro significant_round(value, digits=3, type='decimal(18, 2)') -%}
    cast(case
        when {{ value }} is null then null
        when {{ value }} = 0 then 0
        {%- for e in range(17, -3, -1) %}
        when abs({{ value }}) >= {{ '1' ~ '0' * e if e >= 0 else '0.' ~ '0' * (-e - 1) ~ '1' }} then round({{ value }}, {{ digits - 1 - e }})
        {%- endfor %}
        else {{ value }}
    end as {{ type }})
{%- endmacro %}

{#- The amounts of a claim at one valuation (fct_claims, fct_claim_valuations), CNY. -#}
{% macro claim_amount_columns() -%}
    {{ return(['paid_indemnity_cny', 'paid_expense_cny', 'case_reserve_cny', 'recoveries_cny', 'paid_cny', 'incurred_cny']) }}
{%- endmacro %}

{#- `columns` as a published row-level table carries them: each at three significant figures, under its name. -#}
{% macro published_amounts(columns) -%}
    {%- for c in columns %}
    {{ significant_round(c) }} as {{ c }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- An amount rounded to the nearest point of the common 1-2-5 grid (1, 2, 5, 10, 20, 50 … × 10^n),
    nearest on a log scale (the boundaries are the geometric means: 1.41, 3.16, 7.07): a limit of
    CNY 1,999,999.97 converted from another currency is 2,000,000 like the ladders written in CNY, so
    the grid keeps no trace of the currency. 0 stays 0, null stays null. -#}
{% macro grid_round(value, type='decimal(18, 2)') -%}
    {%- set magnitude = 'power(10, floor(log10(' ~ value ~ ')))' -%}
    {%- set mantissa = '(' ~ value ~ ' / ' ~ magnitude ~ ')' -%}
    cast(case
        when {{ value }} is null then null
        when {{ value }} <= 0 then 0
        when {{ mantissa }} >= sqrt(50) then 10 * {{ magnitude }}
        when {{ mantissa }} >= sqrt(10) then 5 * {{ magnitude }}
        when {{ mantissa }} >= sqrt(2) then 2 * {{ magnitude }}
        else {{ magnitude }}
    end as {{ type }})
{%- endmacro %}

{#- numerator ÷ denominator (integers, denominator not 0) as a DECIMAL with `scale` decimals, rounded
    half away from zero, in exact integer arithmetic (a DECIMAL division would be a double). -#}
{% macro div_half_up(numerator, denominator, scale) -%}
    {%- set unit = '1' if scale == 0 else '0.' ~ ('0' * (scale - 1)) ~ '1' -%}
    {%- set n = '(' ~ numerator ~ ')' -%}
    {%- set d = '(' ~ denominator ~ ')' -%}
    cast(cast(sign({{ n }}) * sign({{ d }}) * {{ integer_div('2 * abs(' ~ n ~ ') * ' ~ (10 ** scale) ~ ' + abs(' ~ d ~ ')', '2 * abs(' ~ d ~ ')') }} as decimal(38, 0)) * {{ unit }} as decimal(38, {{ scale }}))
{%- endmacro %}

{#- Quantile q (0–1) of a sorted list (sorted_list_of), by linear interpolation between the two
    nearest ranks (numpy's default), exact in DECIMAL and rounded half away from zero to `scale`
    decimals; null for an empty or null list. -#}
{% macro exact_quantile(values, q, scale) -%}
    {%- set n = list_length(values) -%}
    {%- set position = 'cast(' ~ q ~ ' as decimal(10, 6)) * (' ~ n ~ ' - 1)' -%}
    {%- set lower = 'cast(floor(' ~ position ~ ') as bigint) + 1' -%}
    {%- set upper = 'least(' ~ lower ~ ' + 1, ' ~ n ~ ')' -%}
    case when {{ n }} > 0 then cast(round(
        {{ list_element(values, lower) }}
        + ({{ list_element(values, upper) }} - {{ list_element(values, lower) }})
          * ({{ position }} - floor({{ position }})),
        {{ scale }}) as decimal(38, {{ scale }})) end
{%- endmacro %}
