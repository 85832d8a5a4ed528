with

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

disputes as (

    select * from {{ ref('stg_stripe__disputes') }}

),

charge_disputes as (

    select
        charge_id,
        cast(count(*) as integer) as dispute_count,
        cast(count(case when is_lost then dispute_id end) as integer) as lost_dispute_count,
        coalesce(sum(case when is_lost then amount end), 0) as lost_dispute_amount

    from disputes
    group by charge_id

),

classified as (

    select
        charges.charge_id,
        charges.customer_id,
        charges.currency as charge_currency,
        coalesce(charges.settlement_currency, charges.currency) as settlement_currency,
        cast(coalesce(charges.exchange_rate, 1) as decimal(38, 12)) as exchange_rate,
        coalesce(charges.amount_refunded, 0) as refunded_amount,
        -- a lost dispute takes back at most what the refunds left of the capture
        least(
            coalesce(charge_disputes.lost_dispute_amount, 0),
            charges.amount_captured - coalesce(charges.amount_refunded, 0)
        ) as lost_dispute_amount,
        coalesce(charge_disputes.dispute_count, 0) as dispute_count,
        coalesce(charge_disputes.lost_dispute_count, 0) as lost_dispute_count,
        charges.amount_captured,
        charges.charge_status = 'succeeded' and charges.is_captured as is_successful_capture,
        charges.charge_status = 'failed' as is_failed,
        charges.created_at

    from charges

    left join charge_disputes
        on charges.charge_id = charge_disputes.charge_id

),

converted as (

    select
        charge_id,
        customer_id,
        charge_currency,
        settlement_currency,
        exchange_rate,
        -- typed explicitly: every warehouse gives the same scale (3 decimals, 15 converted)
        cast(
            amount_captured - refunded_amount - lost_dispute_amount as decimal(38, 3)
        ) as net_amount,
        cast(
            cast(amount_captured - refunded_amount - lost_dispute_amount as decimal(38, 3))
            * exchange_rate as decimal(38, 15)
        ) as net_amount_settlement,
        cast(
            cast(refunded_amount as decimal(38, 3)) * exchange_rate as decimal(38, 15)
        ) as refunded_amount_settlement,
        cast(
            cast(lost_dispute_amount as decimal(38, 3)) * exchange_rate as decimal(38, 15)
        ) as lost_dispute_amount_settlement,
        dispute_count,
        lost_dispute_count,
        is_successful_capture,
        is_successful_capture
        and amount_captured - refunded_amount - lost_dispute_amount > 0 as is_purchase,
        is_failed,
        created_at

    from classified

)

select * from converted
