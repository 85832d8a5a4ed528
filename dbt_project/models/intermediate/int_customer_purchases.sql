with

charges as (

    select * from {{ ref('int_charges_converted') }}

),

successful_captures as (

    select * from charges
    where is_successful_capture and customer_id is not null

),

aggregated as (

    select
        customer_id,
        arg_max(settlement_currency, created_at) as settlement_currency,
        cast(round(sum(net_amount_settlement), 2) as decimal(18, 2)) as lifetime_spend,
        cast(count(case when is_purchase then charge_id end) as integer) as purchase_count,
        min(case when is_purchase then created_at end) as first_purchase_at,
        max(case when is_purchase then created_at end) as last_purchase_at

    from successful_captures
    group by customer_id

)

select * from aggregated
