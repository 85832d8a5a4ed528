with

source as (

    select * from {{ source('stripe', 'invoices') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as invoice_id,
        source.customer_id,
        source.subscription_id,

        ---------- text
        source.status as invoice_status,
        source.billing_reason,
        source.number as invoice_number,
        lower(source.currency) as currency,

        ---------- numerics
        {{ minor_to_major('source.amount_due', 'invoice_currency.exponent') }} as amount_due,
        {{ minor_to_major('source.amount_paid', 'invoice_currency.exponent') }} as amount_paid,
        {{ minor_to_major('source.amount_remaining', 'invoice_currency.exponent') }}
            as amount_remaining,
        {{ minor_to_major('source.total', 'invoice_currency.exponent') }} as total,

        ---------- booleans
        source.lines is not null and not coalesce(source.lines_has_more, false) as has_all_lines,
        coalesce(source.is_deleted, false) as is_deleted,

        ---------- timestamps
        source.paid_at,
        source.created as created_at

    from source

    left join currency_exponents as invoice_currency
        on lower(source.currency) = invoice_currency.currency

)

select * from renamed
