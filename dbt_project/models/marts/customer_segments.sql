{#
    One row per segment a customer belongs to. To add a segment group, add a column to
    customer_profiles and one `union all` branch here: its tags (`<group>:<segment>`) reach
    Mailchimp and Customer.io with no Python change.
#}

with

customer_profiles as (

    select * from {{ ref('customer_profiles') }}

),

memberships as (

    select
        customer_id,
        'frequency' as segment_group,
        frequency_segment as segment
    from customer_profiles

    union all

    select
        customer_id,
        'spend' as segment_group,
        spend_segment as segment
    from customer_profiles

),

final as (

    select
        customer_id,
        segment_group,
        segment,
        segment_group || ':' || segment as tag

    from memberships
    where segment != 'none'

)

select * from final
