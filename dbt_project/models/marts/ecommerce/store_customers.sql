with

profiles as (

    select * from {{ ref('customer_profiles') }}

),

orders as (

    select * from {{ ref('store_orders') }}

),

shoppers as (

    select distinct customer_id from orders

),

final as (

    select
        profiles.customer_id,
        profiles.email,
        case
            when position(' ' in trim(profiles.name)) > 0
                then left(trim(profiles.name), position(' ' in trim(profiles.name)) - 1)
            else nullif(trim(profiles.name), '')
        end as first_name,
        case
            when position(' ' in trim(profiles.name)) > 0
                then trim(substr(trim(profiles.name), position(' ' in trim(profiles.name)) + 1))
        end as last_name,
        profiles.marketing_consent as opt_in_status

    from profiles

    inner join shoppers
        on profiles.customer_id = shoppers.customer_id

    where profiles.has_valid_email

)

select * from final
