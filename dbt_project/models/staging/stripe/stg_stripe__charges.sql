with

source as (

    select * from {{ source('stripe', 'charges') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as charge_id,
        source.customer_id,
        source.invoice_id,
        source.payment_intent_id,
        source.balance_transaction_id,

        ---------- text
        source.status as charge_status,
        source.failure_code,
        lower(source.currency) as currency,
        lower(source.bt_currency) as settlement_currency,

        ---------- numerics
        {{ minor_to_major('source.amount', 'charge_currency.exponent') }} as amount,
        {{ minor_to_major('source.amount_captured', 'charge_currency.exponent') }}
            as amount_captured,
        {{ minor_to_major('source.amount_refunded', 'charge_currency.exponent') }}
            as amount_refunded,
        {{ minor_to_major('source.bt_amount', 'settlement_currency.exponent') }}
            as settlement_amount,
        source.bt_exchange_rate as exchange_rate,

        ---------- booleans
        coalesce(source.paid, false) as is_paid,
        coalesce(source.captured, false) as is_captured,
        coalesce(source.refunded, false) as is_refunded,
        coalesce(source.disputed, false) as is_disputed,

        ---------- timestamps
        source.created as created_at

    from source

    left join currency_exponents as charge_currency
        on lower(source.currency) = charge_currency.currency

    left join currency_exponents as settlement_currency
        on lower(source.bt_currency) = settlement_currency.currency

)

select * from renamed
