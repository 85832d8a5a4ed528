with

orders as (

    select * from {{ ref('store_orders') }}

),

sessions as (

    select * from {{ ref('stg_stripe__checkout_sessions') }}

),

line_items as (

    select * from {{ ref('stg_stripe__checkout_line_items') }}

),

variants as (

    select * from {{ ref('store_product_variants') }}

),

-- what the order's Checkout Session sold (the session of the charge's payment intent)
checkout_lines as (

    select
        line_items.line_item_id as order_line_id,
        orders.order_id,
        coalesce(variants.product_id, '{{ store_generic_product_id() }}') as product_id,
        coalesce(variants.variant_id, '{{ store_generic_product_id() }}') as product_variant_id,
        line_items.quantity,
        cast(
            round({{ decimal_divide('line_items.amount_subtotal', 'line_items.quantity') }}, 3)
            as decimal(18, 3)
        ) as unit_price,
        variants.variant_id is not null as is_catalogue_product

    from orders

    inner join sessions
        on
            orders.payment_intent_id = sessions.payment_intent_id
            and sessions.session_status = 'complete'

    inner join line_items
        on sessions.checkout_session_id = line_items.checkout_session_id

    left join variants
        on
            line_items.price_id = variants.variant_id
            and line_items.product_id = variants.product_id

    where line_items.quantity > 0

),

orders_with_lines as (

    select distinct order_id from checkout_lines

),

-- any other order is one line of the generic product, for its captured amount
generic_lines as (

    select
        orders.order_id as order_line_id,
        orders.order_id,
        '{{ store_generic_product_id() }}' as product_id,
        '{{ store_generic_product_id() }}' as product_variant_id,
        cast(1 as bigint) as quantity,
        orders.captured_total as unit_price,
        false as is_catalogue_product

    from orders

    left join orders_with_lines
        on orders.order_id = orders_with_lines.order_id

    where orders_with_lines.order_id is null

),

final as (

    select
        order_line_id,
        order_id,
        product_id,
        product_variant_id,
        quantity,
        unit_price,
        is_catalogue_product
    from checkout_lines

    union all

    select
        order_line_id,
        order_id,
        product_id,
        product_variant_id,
        quantity,
        unit_price,
        is_catalogue_product
    from generic_lines

)

select * from final
