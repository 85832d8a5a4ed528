with

source as (

    select * from {{ source('stripe', 'prices') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as price_id,
        source.product_id,

        ---------- text
        source.type as price_type,
        source.recurring_interval,
        lower(source.currency) as currency,

        ---------- numerics
        {{ minor_to_major('source.unit_amount', 'price_currency.exponent') }} as unit_amount,
        source.recurring_interval_count,

        ---------- booleans
        coalesce(source.active, false) as is_active,
        coalesce(source.is_deleted, false) as is_deleted,

        ---------- timestamps
        source.created as created_at,
        source.deleted_at

    from source

    left join currency_exponents as price_currency
        on lower(source.currency) = price_currency.currency

)

select * from renamed
