with

prices as (

    select * from {{ ref('stg_stripe__prices') }}

),

products as (

    select * from {{ ref('stg_stripe__products') }}

),

rates as (

    select * from {{ ref('int_store_exchange_rates') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

price_variants as (

    select
        prices.price_id as variant_id,
        prices.product_id,
        products.product_name
        || ' ('
        || upper(prices.currency)
        || coalesce(' / ' || prices.recurring_interval, '')
        || ')' as variant_title,
        prices.currency as price_currency,
        prices.unit_amount as price_amount,
        -- rounded to the store currency's decimals (round() takes only a constant precision)
        round(
            prices.unit_amount * rates.rate_to_store_currency
            * power(10, coalesce(store_exponent.exponent, 2))
        ) / power(10, coalesce(store_exponent.exponent, 2)) as store_price,
        prices.is_active
        and products.is_active
        and not prices.is_deleted
        and not products.is_deleted as is_visible

    from prices

    inner join products
        on prices.product_id = products.product_id

    left join rates
        on prices.currency = rates.currency

    left join currency_exponents as store_exponent
        on store_exponent.currency = '{{ store_currency() }}'

),

generic_variant as (

    select
        '{{ store_generic_product_id() }}' as variant_id,
        '{{ store_generic_product_id() }}' as product_id,
        'Stripe payment' as variant_title,
        cast(null as varchar) as price_currency,
        cast(null as decimal(18, 3)) as price_amount,
        cast(null as decimal(18, 3)) as store_price,
        false as is_visible

),

final as (

    select
        variant_id,
        product_id,
        variant_title,
        price_currency,
        price_amount,
        cast(store_price as decimal(18, 3)) as store_price,
        '{{ store_currency() }}' as store_currency,
        is_visible
    from price_variants

    union all

    select
        variant_id,
        product_id,
        variant_title,
        price_currency,
        price_amount,
        store_price,
        '{{ store_currency() }}' as store_currency,
        is_visible
    from generic_variant

)

select * from final
