with

source as (

    select * from {{ source('stripe', 'customers') }}

),

checkout_sessions as (

    select * from {{ ref('stg_stripe__checkout_sessions') }}

),

-- the answer of each customer's latest completed Checkout Session that asked for promotions consent
checkout_consent as (

    select
        customer_id,
        {{ arg_max('promotions_consent', 'created_at') }} as checkout_promotions_consent

    from checkout_sessions
    where
        customer_id is not null
        and session_status = 'complete'
        and promotions_consent is not null
    group by customer_id

),

renamed as (

    select

        ----------  ids
        source.id as customer_id,

        ---------- text
        nullif(trim(source.email), '') as email,
        source.name as customer_name,
        lower(source.currency) as currency,
        checkout_consent.checkout_promotions_consent,

        ---------- booleans
        coalesce(
            lower(trim(
                source.metadata
                ->> '{{ var("marketing_consent_metadata_key") | replace("'", "''") }}'
            )) in ('true', 'yes', '1'),
            false
        ) as metadata_marketing_consent,
        coalesce(source.delinquent, false) as is_delinquent,
        coalesce(source.is_deleted, false) as is_deleted,

        ---------- json
        source.metadata,

        ---------- timestamps
        source.created as created_at,
        source.deleted_at

    from source

    left join checkout_consent
        on source.id = checkout_consent.customer_id

),

final as (

    select
        *,
        -- either source is consent: the metadata key, or the latest checkout's opt_in
        metadata_marketing_consent
        or coalesce(checkout_promotions_consent = 'opt_in', false) as marketing_consent

    from renamed

)

select * from final
