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

invoices as (

    select * from {{ ref('stg_stripe__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_stripe__invoice_lines') }}

),

invoice_payments as (

    select * from {{ ref('stg_stripe__invoice_payments') }}

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

orders_with_checkout_lines as (

    select distinct order_id from checkout_lines

),

-- paid invoice payments, with how many paid their invoice (an invoice paid in several
-- payments: no single charge bought its lines)
paid_invoice_payments as (

    select
        invoice_id,
        payment_intent_id,
        charge_id,
        count(*) over (partition by invoice_id) as paid_payments

    from invoice_payments
    where payment_status = 'paid'

),

-- the invoices each order's charge paid: by its payment intent, or (a charge without one)
-- by the charge itself
paid_invoices as (

    select
        orders.order_id,
        orders.currency_code,
        paid_invoice_payments.invoice_id

    from orders

    inner join paid_invoice_payments
        on orders.payment_intent_id = paid_invoice_payments.payment_intent_id

    where paid_invoice_payments.paid_payments = 1

    union

    select
        orders.order_id,
        orders.currency_code,
        paid_invoice_payments.invoice_id

    from orders

    inner join paid_invoice_payments
        on orders.order_id = paid_invoice_payments.charge_id

    where paid_invoice_payments.paid_payments = 1

),

-- what the invoices an order paid billed, when the order has no checkout lines
invoice_order_lines as (

    select
        invoice_lines.invoice_line_id as order_line_id,
        paid_invoices.order_id,
        coalesce(variants.product_id, '{{ store_generic_product_id() }}') as product_id,
        coalesce(variants.variant_id, '{{ store_generic_product_id() }}') as product_variant_id,
        invoice_lines.quantity,
        cast(
            round(
                {{ decimal_divide('invoice_lines.amount_subtotal', 'invoice_lines.quantity') }}, 3
            )
            as decimal(18, 3)
        ) as unit_price,
        variants.variant_id is not null as is_catalogue_product

    from paid_invoices

    inner join invoices
        on paid_invoices.invoice_id = invoices.invoice_id

    inner join invoice_lines
        on invoices.invoice_id = invoice_lines.invoice_id

    left join orders_with_checkout_lines
        on paid_invoices.order_id = orders_with_checkout_lines.order_id

    left join variants
        on
            invoice_lines.price_id = variants.variant_id
            and invoice_lines.product_id = variants.product_id

    where
        orders_with_checkout_lines.order_id is null
        and invoices.has_all_lines
        and not invoices.is_deleted
        and invoices.currency = lower(paid_invoices.currency_code)
        and invoice_lines.quantity > 0

),

orders_with_lines as (

    select order_id from orders_with_checkout_lines

    union

    select order_id from invoice_order_lines

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
    from invoice_order_lines

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
