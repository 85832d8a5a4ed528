{#
    RFM scores of purchasing customers. Each score is the customer's quintile among purchasing
    customers: 1 + floor(5 × percent_rank), capped at 5, so 5 is best and customers with the same
    value always get the same score (the lowest their tie reaches): deterministic under ties.
    The named segment comes from the recency and frequency scores; see the yml.
#}

with

purchases as (

    select * from {{ ref('int_customer_purchases') }}
    where purchase_count > 0

),

scored as (

    select
        customer_id,
        cast(least(5, 1 + floor(5 * percent_rank() over (
            order by last_purchase_at
        ))) as integer) as recency_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (
            order by purchase_count
        ))) as integer) as frequency_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (
            order by lifetime_spend
        ))) as integer) as monetary_score

    from purchases

),

named as (

    select
        customer_id,
        recency_score,
        frequency_score,
        monetary_score,
        case
            when recency_score >= 4 and frequency_score >= 4 then 'champions'
            when recency_score >= 3 and frequency_score >= 3 then 'loyal'
            when recency_score >= 4 then 'potential_loyalists'
            when recency_score = 3 then 'needs_attention'
            when frequency_score >= 3 then 'at_risk'
            when recency_score = 2 then 'hibernating'
            else 'lost'
        end as rfm_segment

    from scored

)

select * from named
