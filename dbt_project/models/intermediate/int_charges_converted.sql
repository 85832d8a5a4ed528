with

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

classified as (

    select
        charge_id,
        customer_id,
        currency as charge_currency,
        coalesce(settlement_currency, currency) as settlement_currency,
        cast(coalesce(exchange_rate, 1) as decimal(38, 12)) as exchange_rate,
        amount_captured - coalesce(amount_refunded, 0) as net_amount,
        charge_status = 'succeeded' and is_captured as is_successful_capture,
        charge_status = 'succeeded'
        and is_captured
        and coalesce(amount_refunded, 0) < amount_captured as is_purchase,
        created_at

    from charges

),

converted as (

    select
        charge_id,
        customer_id,
        charge_currency,
        settlement_currency,
        exchange_rate,
        net_amount,
        cast(net_amount as decimal(38, 3)) * exchange_rate as net_amount_settlement,
        is_successful_capture,
        is_purchase,
        created_at

    from classified

)

select * from converted
