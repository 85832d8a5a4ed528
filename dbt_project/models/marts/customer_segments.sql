{#
    One row per segment a customer belongs to. To add a segment: a row in the
    `segment_catalogue` seed, and its rule here (a column of customer_profiles and one
    `union all` branch, or a new branch computing it). Its tag `<group>:<segment>` then reaches
    Mailchimp and Customer.io with no Python change. A segment missing from the catalogue fails
    the build (not_null test on `segment_description`).
#}

with

customer_profiles as (

    select * from {{ ref('customer_profiles') }}

),

segment_catalogue as (

    select * from {{ ref('segment_catalogue') }}

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

    union all

    select
        customer_id,
        'lifecycle' as segment_group,
        lifecycle_stage as segment
    from customer_profiles

    union all

    select
        customer_id,
        'rfm' as segment_group,
        rfm_segment as segment
    from customer_profiles

),

final as (

    select
        memberships.customer_id,
        memberships.segment_group,
        memberships.segment,
        memberships.segment_group || ':' || memberships.segment as tag,
        segment_catalogue.description as segment_description

    from memberships

    left join segment_catalogue
        on
            memberships.segment_group = segment_catalogue.segment_group
            and memberships.segment = segment_catalogue.segment

    where memberships.segment is not null and memberships.segment != 'none'

)

select * from final
