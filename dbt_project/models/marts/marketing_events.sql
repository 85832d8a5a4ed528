with

events as (

    select * from {{ ref('stg_stripe__events') }}

),

catalogue as (

    select * from {{ ref('marketing_event_catalogue') }}

),

charges as (

    select
        charge_id,
        customer_id

    from {{ ref('stg_stripe__charges') }}

),

forwarded as (

    select
        events.event_id,
        -- a dispute names its charge only: the customer is the charge's
        coalesce(events.customer_id, charges.customer_id) as customer_id,
        catalogue.event_name,
        events.event_type as stripe_event_type,
        events.object_id as stripe_object_id,
        events.amount,
        events.currency,
        events.failure_code,
        events.dispute_reason,
        events.is_livemode,
        events.created_at as occurred_at

    from events

    inner join catalogue
        on events.event_type = catalogue.stripe_event_type

    left join charges
        on events.charge_id = charges.charge_id

)

select * from forwarded
