with

source as (

    select * from {{ source('stripe', 'customers') }}

),

renamed as (

    select

        ----------  ids
        id as customer_id,

        ---------- text
        nullif(trim(email), '') as email,
        name as customer_name,
        lower(currency) as currency,

        ---------- booleans
        coalesce(
            lower(trim(
                metadata ->> '{{ var("marketing_consent_metadata_key") | replace("'", "''") }}'
            )) in ('true', 'yes', '1'),
            false
        ) as marketing_consent,
        coalesce(delinquent, false) as is_delinquent,
        coalesce(is_deleted, false) as is_deleted,

        ---------- json
        metadata,

        ---------- timestamps
        created as created_at,
        deleted_at

    from source

)

select * from renamed
