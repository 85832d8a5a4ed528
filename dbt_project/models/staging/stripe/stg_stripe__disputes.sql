with

source as (

    select * from {{ source('stripe', 'disputes') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as dispute_id,
        source.charge_id,

        ---------- text
        source.status as dispute_status,
        source.reason as dispute_reason,
        lower(source.currency) as currency,

        ---------- numerics
        {{ minor_to_major('source.amount', 'dispute_currency.exponent') }} as amount,

        ---------- booleans
        coalesce(source.status = 'lost', false) as is_lost,

        ---------- timestamps
        source.created as created_at

    from source

    left join currency_exponents as dispute_currency
        on lower(source.currency) = dispute_currency.currency

)

select * from renamed
