with

source as (

    select * from {{ source('stripe', 'refunds') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as refund_id,
        source.charge_id,
        source.payment_intent_id,

        ---------- text
        source.status as refund_status,
        source.reason as refund_reason,
        lower(source.currency) as currency,

        ---------- numerics
        {{ minor_to_major('source.amount', 'refund_currency.exponent') }} as amount,

        ---------- timestamps
        source.created as created_at

    from source

    left join currency_exponents as refund_currency
        on lower(source.currency) = refund_currency.currency

)

select * from renamed
