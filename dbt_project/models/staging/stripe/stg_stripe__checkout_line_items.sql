with

source as (

    select * from {{ source('stripe', 'checkout_sessions') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

unnested as (

    select
        source.id as checkout_session_id,
        {{ json_array_elements('source.line_items') }} as item

    from source

    where source.line_items is not null

),

renamed as (

    select

        ----------  ids
        unnested.item ->> 'id' as line_item_id,
        unnested.checkout_session_id,
        unnested.item -> 'price' ->> 'id' as price_id,
        unnested.item -> 'price' ->> 'product' as product_id,

        ---------- text
        unnested.item ->> 'description' as line_description,
        lower(unnested.item ->> 'currency') as currency,

        ---------- numerics
        cast(unnested.item ->> 'quantity' as bigint) as quantity,
        {{ minor_to_major(
            "cast(unnested.item ->> 'amount_subtotal' as bigint)",
            'item_currency.exponent'
        ) }} as amount_subtotal,
        {{ minor_to_major(
            "cast(unnested.item ->> 'amount_total' as bigint)",
            'item_currency.exponent'
        ) }} as amount_total

    from unnested

    left join currency_exponents as item_currency
        on lower(unnested.item ->> 'currency') = item_currency.currency

)

select * from renamed
