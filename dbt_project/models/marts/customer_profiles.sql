with

customers as (

    select * from {{ ref('stg_stripe__customers') }}

),

customer_purchases as (

    select * from {{ ref('int_customer_purchases') }}

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
        coalesce(customer_purchases.lifetime_spend, 0) as lifetime_spend,
        coalesce(customer_purchases.purchase_count, 0) as purchase_count,
        customer_purchases.first_purchase_at,
        customer_purchases.last_purchase_at,
        customers.marketing_consent,
        customers.created_at as customer_created_at

    from customers

    left join customer_purchases
        on customers.customer_id = customer_purchases.customer_id

    where not customers.is_deleted

),

segmented as (

    select
        *,
        coalesce(
            regexp_full_match(email, '[^@\s]+@[^@\s]+\.[^@\s]+'),
            false
        ) as has_valid_email,
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
        end as spend_segment

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
        first_purchase_at,
        last_purchase_at,
        frequency_segment,
        spend_segment,
        marketing_consent,
        customer_created_at

    from segmented

)

select * from final
