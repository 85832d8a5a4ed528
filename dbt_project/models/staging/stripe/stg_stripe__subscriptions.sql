with

source as (

    select * from {{ source('stripe', 'subscriptions') }}

),

renamed as (

    select

        ----------  ids
        id as subscription_id,
        customer_id,

        ---------- text
        status as subscription_status,
        lower(currency) as currency,

        ---------- booleans
        coalesce(cancel_at_period_end, false) as is_canceled_at_period_end,

        ---------- json
        items as subscription_items,

        ---------- timestamps
        start_date as started_at,
        trial_end as trial_ends_at,
        canceled_at,
        ended_at,
        created as created_at

    from source

)

select * from renamed
