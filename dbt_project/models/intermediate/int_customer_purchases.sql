with

charges as (

    select * from {{ ref('int_charges_converted') }}

),

customer_charges as (

    select * from charges
    where customer_id is not null

),

aggregated as (

    select
        customer_id,
        -- the currency of the latest successful capture (NULL without one: failed attempts only)
        {{ arg_max(
            'case when is_successful_capture then settlement_currency end',
            'case when is_successful_capture then created_at end'
        ) }} as settlement_currency,
        cast(round(coalesce(sum(
            case when is_successful_capture then net_amount_settlement end
        ), 0), 2) as decimal(18, 2)) as lifetime_spend,
        cast(round(coalesce(sum(
            case when is_successful_capture then refunded_amount_settlement end
        ), 0), 2) as decimal(18, 2)) as total_refunded,
        cast(round(coalesce(sum(
            case when is_successful_capture then lost_dispute_amount_settlement end
        ), 0), 2) as decimal(18, 2)) as lost_dispute_amount,
        cast(count(case when is_purchase then charge_id end) as integer) as purchase_count,
        cast(count(
            case
                when is_purchase and created_at > {{ as_of() }} - interval '90 day'
                    then charge_id
            end
        ) as integer) as purchases_last_90_days,
        cast(count(
            case
                when is_purchase and created_at > {{ as_of() }} - interval '365 day'
                    then charge_id
            end
        ) as integer) as purchases_last_365_days,
        cast(count(
            case
                when is_failed and created_at > {{ as_of() }} - interval '30 day'
                    then charge_id
            end
        ) as integer) as failed_payments_last_30_days,
        cast(sum(dispute_count) as integer) as dispute_count,
        cast(sum(lost_dispute_count) as integer) as lost_dispute_count,
        min(case when is_purchase then created_at end) as first_purchase_at,
        max(case when is_purchase then created_at end) as last_purchase_at,
        bool_or(is_successful_capture) as has_successful_capture

    from customer_charges
    group by customer_id

)

select * from aggregated
