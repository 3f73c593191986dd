{#- The published form of fct_claim_valuations (published under that name, meta publish_as). Insurers
    deliver their months at different times and some start later: a valuation month that one insurer
    alone (or mostly) has delivered would tell that insurer's claims by their dates. So a valuation is
    published only when its month holds valuations of at least var('publication_k_insurers') insurers,
    none with more than var('publication_dominance_share') of the month's rows; the other months wait
    until their insurers' peers deliver. The claim's segment, section and dates are its published
    claim's (join fct_claims by claim_key), not repeated here. -#}
with valuations as (
    select *, cast({{ dbt.date_trunc('month', 'valuation_date') }} as date) as valuation_month
    from {{ ref('fct_claim_valuations') }}
),

by_insurer as (
    select valuation_month, insurer_id, count(*) as n
    from valuations
    group by valuation_month, insurer_id
),

published_months as (
    select valuation_month
    from by_insurer
    group by valuation_month
    having count(distinct insurer_id) >= {{ var('publication_k_insurers') }}
        and max(n) <= {{ var('publication_dominance_share') }} * sum(n)
)

select
    claim_key,
    valuation_date,
    incident_key,
    status,
    is_open,
    {{ published_amounts(claim_amount_columns()) }}
from valuations
where valuation_month in (select valuation_month from published_months)
