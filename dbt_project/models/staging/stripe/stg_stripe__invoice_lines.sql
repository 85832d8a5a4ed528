with

source as (

    select * from {{ source('stripe', 'invoices') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

unnested as (

    select
        source.id as invoice_id,
        {{ json_array_elements('source.lines') }} as line_item

    from source

    where source.lines is not null

),

renamed as (

    select

        ----------  ids
        unnested.line_item ->> 'id' as invoice_line_id,
        unnested.invoice_id,
        unnested.line_item -> 'pricing' -> 'price_details' ->> 'price' as price_id,
        unnested.line_item -> 'pricing' -> 'price_details' ->> 'product' as product_id,
        coalesce(
            unnested.line_item -> 'parent' -> 'subscription_item_details' ->> 'subscription',
            unnested.line_item -> 'parent' -> 'invoice_item_details' ->> 'subscription'
        ) as subscription_id,
        unnested.line_item -> 'parent' -> 'subscription_item_details' ->> 'subscription_item'
            as subscription_item_id,

        ---------- text
        unnested.line_item -> 'parent' ->> 'type' as line_type,
        unnested.line_item ->> 'description' as line_description,
        lower(unnested.line_item ->> 'currency') as currency,

        ---------- numerics
        cast(unnested.line_item ->> 'quantity' as bigint) as quantity,
        {{ minor_to_major(
            "cast(unnested.line_item ->> 'subtotal' as bigint)",
            'line_currency.exponent'
        ) }} as amount_subtotal,
        {{ minor_to_major(
            "cast(unnested.line_item ->> 'amount' as bigint)",
            'line_currency.exponent'
        ) }} as amount,

        ---------- booleans
        coalesce(
            cast(
                unnested.line_item -> 'parent' -> 'subscription_item_details' ->> 'proration'
                as boolean
            )
            or cast(
                unnested.line_item -> 'parent' -> 'invoice_item_details' ->> 'proration' as boolean
            ),
            false
        ) as is_proration

    from unnested

    left join currency_exponents as line_currency
        on lower(unnested.line_item ->> 'currency') = line_currency.currency

)

select * from renamed
