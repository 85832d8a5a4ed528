with

source as (

    select * from {{ source('stripe', 'events') }}

),

renamed as (

    select

        ----------  ids
        id as event_id,
        object_id,

        ---------- text
        type as event_type,
        object_type,
        api_version,

        ---------- booleans
        coalesce(livemode, false) as is_livemode,

        ---------- json
        previous_attributes,

        ---------- timestamps
        created as created_at

    from source

)

select * from renamed
