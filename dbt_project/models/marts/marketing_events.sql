with

events as (

    select * from {{ ref('stg_stripe__events') }}

),

catalogue as (

    select * from {{ ref('marketing_event_catalogue') }}

),

customers as (

    select
        customer_id,
        is_deleted

    from {{ ref('stg_stripe__customers') }}

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

select forwarded.*

from forwarded

left join customers
    on forwarded.customer_id = customers.customer_id

-- A customer deleted in Stripe (or deleted before the first backfill, so never listed) gets no
-- journey: the event would create a person at Customer.io. Guest checkouts stay (no customer).
where
    forwarded.customer_id is null
    or not coalesce(customers.is_deleted, true)
