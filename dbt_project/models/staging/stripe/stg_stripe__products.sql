with

source as (

    select * from {{ source('stripe', 'products') }}

),

renamed as (

    select

        ----------  ids
        id as product_id,

        ---------- text
        name as product_name,

        ---------- booleans
        coalesce(active, false) as is_active,
        coalesce(is_deleted, false) as is_deleted,

        ---------- timestamps
        created as created_at,
        updated as updated_at,
        deleted_at

    from source

)

select * from renamed
