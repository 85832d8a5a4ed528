with

source as (

    select * from {{ source('stripe', 'invoice_payments') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as invoice_payment_id,
        source.invoice_id,
        source.payment_intent_id,
        source.charge_id,

        ---------- text
        source.payment_type,
        source.status as payment_status,
        lower(source.currency) as currency,

        ---------- numerics
        {{ minor_to_major('source.amount_paid', 'payment_currency.exponent') }} as amount_paid,
        {{ minor_to_major('source.amount_requested', 'payment_currency.exponent') }}
            as amount_requested,

        ---------- booleans
        coalesce(source.is_default, false) as is_default,

        ---------- timestamps
        source.paid_at,
        source.created as created_at

    from source

    left join currency_exponents as payment_currency
        on lower(source.currency) = payment_currency.currency

)

select * from renamed
