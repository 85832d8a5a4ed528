with

source as (

    select * from {{ source('stripe', 'events') }}

),

currency_exponents as (

    select * from {{ ref('currency_exponents') }}

),

renamed as (

    select

        ----------  ids
        source.id as event_id,
        source.object_id,
        case
            when source.object_type = 'customer' then source.object_id
            else source.raw -> 'data' -> 'object' ->> 'customer'
        end as customer_id,
        source.raw -> 'data' -> 'object' ->> 'charge' as charge_id,

        ---------- text
        source.type as event_type,
        source.object_type,
        source.api_version,
        lower(source.raw -> 'data' -> 'object' ->> 'currency') as currency,
        source.raw -> 'data' -> 'object' ->> 'failure_code' as failure_code,
        case
            when source.object_type = 'dispute' then source.raw -> 'data' -> 'object' ->> 'reason'
        end as dispute_reason,

        ---------- numerics
        {{ minor_to_major(
            "coalesce(
                (source.raw -> 'data' -> 'object' ->> 'amount')::bigint,
                (source.raw -> 'data' -> 'object' ->> 'amount_due')::bigint,
                (source.raw -> 'data' -> 'object' ->> 'amount_total')::bigint
            )",
            'object_currency.exponent'
        ) }} as amount,

        ---------- booleans
        coalesce(source.livemode, false) as is_livemode,

        ---------- json
        source.previous_attributes,

        ---------- timestamps
        source.created as created_at

    from source

    left join currency_exponents as object_currency
        on lower(source.raw -> 'data' -> 'object' ->> 'currency') = object_currency.currency

)

select * from renamed
