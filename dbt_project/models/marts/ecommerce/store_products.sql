with

products as (

    select * from {{ ref('stg_stripe__products') }}

),

variants as (

    select * from {{ ref('store_product_variants') }}

),

variant_counts as (

    select
        product_id,
        cast(count(*) as integer) as variant_count,
        bool_or(is_visible) as has_visible_variant

    from variants
    group by product_id

),

stripe_products as (

    select
        products.product_id,
        products.product_name as product_title,
        products.is_active,
        products.is_deleted,
        products.created_at as published_at

    from products

    -- Mailchimp creates a product only with a variant: products without prices cannot be bought
    inner join variant_counts
        on products.product_id = variant_counts.product_id

),

generic_product as (

    select
        '{{ store_generic_product_id() }}' as product_id,
        'Stripe payment' as product_title,
        false as is_active,
        false as is_deleted,
        cast(null as timestamp with time zone) as published_at

),

final as (

    select
        product_id,
        product_title,
        is_active,
        is_deleted,
        published_at
    from stripe_products

    union all

    select
        product_id,
        product_title,
        is_active,
        is_deleted,
        published_at
    from generic_product

)

select * from final
