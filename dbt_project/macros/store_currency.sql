{#
    The Mailchimp store's currency, lowercase ISO code: the var `store_currency`, else the env
    `MAILCHIMP_STORE_CURRENCY` (the setting the push creates the store with), else the var
    `settlement_currency`. Product variant prices are converted into it (int_store_exchange_rates).
#}
{% macro store_currency() -%}
    {{ return((var('store_currency', env_var('MAILCHIMP_STORE_CURRENCY', var('settlement_currency')))) | lower) }}
{%- endmacro %}


{# The id of the store product (and its one variant) that order lines without a known product point at. #}
{% macro store_generic_product_id() -%}
    {{ return('stripe_payment') }}
{%- endmacro %}
