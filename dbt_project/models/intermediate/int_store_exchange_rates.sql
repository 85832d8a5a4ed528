with

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

-- each currency's latest observed rate into the store currency: Stripe's own conversion of a charge
-- settled in the store currency (settlement amount / charge amount, both in major units)
observed as (

    select
        currency,
        {{ arg_max(decimal_divide('settlement_amount', 'amount'), 'created_at') }}
            as rate_to_store_currency,
        max(created_at) as observed_at

    from charges
    where
        settlement_currency = '{{ store_currency() }}'
        and currency != '{{ store_currency() }}'
        and charge_status = 'succeeded'
        and amount > 0
        and settlement_amount is not null
    group by currency

),

store_currency as (

    select
        '{{ store_currency() }}' as currency,
        cast(1 as decimal(38, 12)) as rate_to_store_currency,
        cast(null as timestamp with time zone) as observed_at

),

final as (

    select
        currency,
        cast(rate_to_store_currency as decimal(38, 12)) as rate_to_store_currency,
        observed_at
    from observed

    union all

    select
        currency,
        rate_to_store_currency,
        observed_at
    from store_currency

)

select * from final
