{#
    Lifetime spend reconciles with Stripe: for every settlement currency, and over all of them, the
    sum of `lifetime_spend` over the profiles equals the net captured amount of those customers'
    charges, computed here straight from the `stripe` sources rather than through the models:
    captured minus refunded minus lost disputes, in minor units, converted once with the currency
    exponent and the balance transaction's exchange rate, in exact decimals, and rounded to cents per
    customer as a profile is. Equal to the cent: returns the currencies that do not reconcile.
    In Dagster it is an asset check of customer_profiles (meta dagster.ref); error severity, so a
    failure stops the push.
#}

{{ config(severity='error', meta={'dagster': {'ref': {'name': 'customer_profiles'}}}) }}

with

profiles as (

    select customer_id, currency, lifetime_spend from {{ ref('customer_profiles') }}

),

exponents as (

    select * from {{ ref('currency_exponents') }}

),

lost_disputes as (

    select charge_id, sum(amount) as lost_minor
    from {{ source('stripe', 'disputes') }}
    where status = 'lost'
    group by charge_id

),

charge_net as (

    select
        charges.customer_id,
        cast(
            (
                charges.amount_captured
                - coalesce(charges.amount_refunded, 0)
                - least(
                    coalesce(lost_disputes.lost_minor, 0),
                    charges.amount_captured - coalesce(charges.amount_refunded, 0)
                )
            )
            / power(10, coalesce(exponents.exponent, 2)) as decimal(18, 3)
        )
        * cast(coalesce(charges.bt_exchange_rate, 1) as decimal(38, 12)) as net_settlement

    from {{ source('stripe', 'charges') }} as charges

    left join lost_disputes
        on charges.id = lost_disputes.charge_id

    left join exponents
        on lower(charges.currency) = exponents.currency

    where charges.status = 'succeeded' and charges.captured

),

stripe_per_customer as (

    select
        profiles.currency,
        round(coalesce(sum(charge_net.net_settlement), 0), 2) as amount

    from profiles

    left join charge_net
        on profiles.customer_id = charge_net.customer_id

    group by profiles.customer_id, profiles.currency

),

stripe_side as (

    select currency, sum(amount) as amount
    from stripe_per_customer
    group by currency

    union all

    select 'all currencies' as currency, coalesce(sum(amount), 0) as amount
    from stripe_per_customer

),

profile_side as (

    select currency, sum(lifetime_spend) as amount
    from profiles
    group by currency

    union all

    select 'all currencies' as currency, coalesce(sum(lifetime_spend), 0) as amount
    from profiles

),

compared as (

    select
        coalesce(profile_side.currency, stripe_side.currency) as currency,
        coalesce(profile_side.amount, 0) as profiles_amount,
        coalesce(stripe_side.amount, 0) as stripe_amount

    from profile_side

    full outer join stripe_side
        on profile_side.currency = stripe_side.currency

)

select * from compared
where profiles_amount != stripe_amount
