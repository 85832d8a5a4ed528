{%- set settlement_currency = var('settlement_currency') | lower -%}
{%- set live_statuses = "('active', 'trialing', 'past_due')" -%}
{%- set paying_statuses = "('active', 'past_due')" -%}

with

subscriptions as (

    select * from {{ ref('stg_stripe__subscriptions') }}

),

items as (

    select * from {{ ref('stg_stripe__subscription_items') }}

),

charges as (

    select * from {{ ref('int_charges_converted') }}

),

exchange_rates as (

    -- the rate of the latest successful capture in each currency settled in the settlement currency
    select
        charge_currency as currency,
        {{ arg_max('exchange_rate', 'created_at') }} as exchange_rate

    from charges
    where is_successful_capture and settlement_currency = '{{ settlement_currency }}'
    group by charge_currency

),

item_mrr as (

    select
        items.subscription_id,
        items.unit_amount
        * items.quantity
        * case items.billing_interval
            when 'day' then 365.0 / 12
            when 'week' then 52.0 / 12
            when 'month' then 1.0
            when 'year' then 1.0 / 12
        end
        / nullif(items.billing_interval_count, 0)
        * case
            when items.currency = '{{ settlement_currency }}' then 1
            else exchange_rates.exchange_rate
        end as mrr

    from items

    left join exchange_rates
        on items.currency = exchange_rates.currency

),

subscription_mrr as (

    select
        subscription_id,
        sum(mrr) as mrr

    from item_mrr
    group by subscription_id

),

ranked as (

    select
        subscriptions.customer_id,
        subscriptions.subscription_status,
        subscriptions.ended_at,
        subscriptions.canceled_at,
        subscription_mrr.mrr,
        case subscriptions.subscription_status
            when 'active' then 1
            when 'past_due' then 2
            when 'trialing' then 3
            when 'unpaid' then 4
            when 'paused' then 5
            when 'incomplete' then 6
            when 'canceled' then 7
            else 8
        end as status_rank

    from subscriptions

    left join subscription_mrr
        on subscriptions.subscription_id = subscription_mrr.subscription_id

),

aggregated as (

    select
        customer_id,
        cast(count(
            case when subscription_status in {{ live_statuses }} then 1 end
        ) as integer) as active_subscription_count,
        cast(round(coalesce(sum(
            case when subscription_status in {{ paying_statuses }} then mrr end
        ), 0), 2) as decimal(18, 2)) as mrr,
        {{ arg_min('subscription_status', 'status_rank') }} as subscription_status,
        max(
            case when subscription_status = 'canceled' then coalesce(ended_at, canceled_at) end
        ) as last_canceled_end_at

    from ranked
    group by customer_id

),

final as (

    select
        customer_id,
        active_subscription_count,
        mrr,
        subscription_status,
        case when active_subscription_count = 0 then last_canceled_end_at end as churned_at

    from aggregated

)

select * from final
