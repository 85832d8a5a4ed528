with

source as (

    select * from {{ source('stripe', 'subscriptions') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

unnested as (

    select
        source.id as subscription_id,
        {{ json_array_elements('source.items') }} as item

    from source

),

renamed as (

    select

        ----------  ids
        unnested.item ->> 'id' as subscription_item_id,
        unnested.subscription_id,
        unnested.item -> 'price' ->> 'id' as price_id,
        unnested.item -> 'price' ->> 'product' as product_id,

        ---------- text
        lower(unnested.item -> 'price' ->> 'currency') as currency,
        unnested.item -> 'price' -> 'recurring' ->> 'interval' as billing_interval,

        ---------- numerics
        cast(unnested.item ->> 'quantity' as bigint) as quantity,
        {{ minor_to_major(
            "cast(unnested.item -> 'price' ->> 'unit_amount' as bigint)",
            'item_currency.exponent'
        ) }} as unit_amount,
        cast(
            unnested.item -> 'price' -> 'recurring' ->> 'interval_count' as integer
        ) as billing_interval_count

    from unnested

    left join currency_exponents as item_currency
        on lower(unnested.item -> 'price' ->> 'currency') = item_currency.currency

)

select * from renamed
