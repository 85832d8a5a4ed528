with

customers as (

    select * from {{ ref('stg_stripe__customers') }}

),

customer_purchases as (

    select * from {{ ref('int_customer_purchases') }}

),

customer_subscriptions as (

    select * from {{ ref('int_customer_subscriptions') }}

),

customer_rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

joined as (

    select
        customers.customer_id,
        nullif(lower(trim(customers.email)), '') as email,
        customers.customer_name as name,
        coalesce(
            customer_purchases.settlement_currency,
            '{{ var("settlement_currency") | lower }}'
        ) as currency,
        cast(coalesce(customer_purchases.lifetime_spend, 0) as decimal(18, 2)) as lifetime_spend,
        coalesce(customer_purchases.purchase_count, 0) as purchase_count,
        customer_purchases.first_purchase_at,
        customer_purchases.last_purchase_at,
        coalesce(customer_purchases.purchases_last_90_days, 0) as purchases_last_90_days,
        coalesce(customer_purchases.purchases_last_365_days, 0) as purchases_last_365_days,
        cast(coalesce(customer_purchases.total_refunded, 0) as decimal(18, 2)) as total_refunded,
        coalesce(
            customer_purchases.failed_payments_last_30_days, 0
        ) as failed_payments_last_30_days,
        coalesce(customer_purchases.dispute_count, 0) as dispute_count,
        coalesce(customer_purchases.lost_dispute_count, 0) as lost_dispute_count,
        coalesce(
            customer_subscriptions.active_subscription_count, 0
        ) as active_subscription_count,
        cast(coalesce(customer_subscriptions.mrr, 0) as decimal(18, 2)) as mrr,
        customer_subscriptions.subscription_status,
        customer_subscriptions.churned_at,
        customer_rfm.recency_score,
        customer_rfm.frequency_score,
        customer_rfm.monetary_score,
        customer_rfm.rfm_segment,
        customers.marketing_consent,
        customers.created_at as customer_created_at

    from customers

    left join customer_purchases
        on customers.customer_id = customer_purchases.customer_id

    left join customer_subscriptions
        on customers.customer_id = customer_subscriptions.customer_id

    left join customer_rfm
        on customers.customer_id = customer_rfm.customer_id

    where not customers.is_deleted

),

segmented as (

    select
        *,
        coalesce(
            {{ matches_fully('email', '[^@\s]+@[^@\s]+\.[^@\s]+') }},
            false
        ) as has_valid_email,
        cast(
            case
                when purchase_count > 0
                    then round({{ decimal_divide('lifetime_spend', 'purchase_count') }}, 2)
            end
            as decimal(18, 2)
        ) as average_order_value,
        cast({{ days_between('last_purchase_at', as_of()) }} as integer)
            as days_since_last_purchase,
        cast(
            case
                when purchase_count > 1
                    then round(
                            {{ decimal_divide(
                                seconds_between('first_purchase_at', 'last_purchase_at'),
                                '86400 * (purchase_count - 1)'
                            ) }},
                            1
                        )
            end as decimal(10, 1)
        ) as avg_days_between_purchases,
        case
            when purchase_count = 0 then 'none'
            when purchase_count >= {{ var('frequency_frequent_min_purchases') }} then 'frequent'
            when purchase_count >= {{ var('frequency_repeat_min_purchases') }} then 'repeat'
            else 'one_time'
        end as frequency_segment,
        case
            when lifetime_spend <= 0 then 'none'
            when lifetime_spend < {{ var('spend_medium_min') }} then 'low'
            when lifetime_spend < {{ var('spend_high_min') }} then 'medium'
            else 'high'
        end as spend_segment,
        case
            when purchase_count = 0 then 'prospect'
            when
                first_purchase_at
                > {{ as_of() }} - interval '1 day' * {{ var('lifecycle_new_days') }}
                then 'new'
            when
                last_purchase_at
                > {{ as_of() }} - interval '1 day' * {{ var('lifecycle_active_days') }}
                or active_subscription_count > 0
                then 'active'
            when
                last_purchase_at
                > {{ as_of() }} - interval '1 day' * {{ var('lifecycle_churned_days') }}
                then 'at_risk'
            else 'churned'
        end as lifecycle_stage

    from joined

),

final as (

    select
        customer_id,
        email,
        has_valid_email,
        name,
        currency,
        lifetime_spend,
        purchase_count,
        average_order_value,
        first_purchase_at,
        last_purchase_at,
        days_since_last_purchase,
        avg_days_between_purchases,
        purchases_last_90_days,
        purchases_last_365_days,
        total_refunded,
        failed_payments_last_30_days,
        dispute_count,
        lost_dispute_count,
        active_subscription_count,
        mrr,
        subscription_status,
        churned_at,
        frequency_segment,
        spend_segment,
        lifecycle_stage,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_segment,
        marketing_consent,
        customer_created_at

    from segmented

)

select * from final
