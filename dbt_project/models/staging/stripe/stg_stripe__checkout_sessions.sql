with

source as (

    select * from {{ source('stripe', 'checkout_sessions') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as checkout_session_id,
        source.customer_id,
        source.payment_intent_id,
        source.invoice_id,

        ---------- text
        source.mode as session_mode,
        source.status as session_status,
        source.payment_status,
        lower(source.currency) as currency,
        nullif(trim(source.customer_email), '') as customer_email,
        case
            when source.consent_promotions in ('opt_in', 'opt_out') then source.consent_promotions
        end as promotions_consent,

        ---------- numerics
        {{ minor_to_major('source.amount_total', 'session_currency.exponent') }} as amount_total,

        ---------- timestamps
        source.created as created_at

    from source

    left join currency_exponents as session_currency
        on lower(source.currency) = session_currency.currency

)

select * from renamed
