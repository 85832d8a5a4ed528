with

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

refunds as (

    select * from {{ ref('stg_stripe__refunds') }}

),

profiles as (

    select * from {{ ref('customer_profiles') }}

),

last_refunds as (

    select
        charge_id,
        max(created_at) as last_refunded_at

    from refunds
    where refund_status = 'succeeded'
    group by charge_id

),

orders as (

    select
        charges.charge_id as order_id,
        charges.customer_id,
        charges.payment_intent_id,
        upper(charges.currency) as currency_code,
        cast(charges.amount_captured as decimal(18, 3)) as captured_total,
        cast(coalesce(charges.amount_refunded, 0) as decimal(18, 3)) as refunded_total,
        cast(
            charges.amount_captured - coalesce(charges.amount_refunded, 0) as decimal(18, 3)
        ) as order_total,
        case
            when coalesce(charges.amount_refunded, 0) >= charges.amount_captured then 'refunded'
            when coalesce(charges.amount_refunded, 0) > 0 then 'partially_refunded'
            else 'paid'
        end as financial_status,
        charges.created_at as processed_at,
        coalesce(last_refunds.last_refunded_at, charges.created_at) as updated_at,
        coalesce(profiles.has_valid_email, false) as customer_has_valid_email

    from charges

    -- live customers only (as the audience): guests and deleted customers have no profile
    inner join profiles
        on charges.customer_id = profiles.customer_id

    left join last_refunds
        on charges.charge_id = last_refunds.charge_id

    where
        charges.charge_status = 'succeeded'
        and charges.is_captured
        and charges.amount_captured > 0

)

select * from orders
