{#
    Convert a Stripe amount in the currency's minor unit to a DECIMAL(18, 3) in major units.

    `exponent_column` is the currency's exponent from the `currency_exponents` seed, left-joined on
    the currency; a currency the seed does not list (NULL) has the usual two decimals.
    The division happens in DOUBLE and is cast back to three decimals, which is exact for any
    amount below 2^53 minor units: the true result has at most three decimals.
#}
{% macro minor_to_major(amount_column, exponent_column) -%}
    cast({{ amount_column }} / power(10, coalesce({{ exponent_column }}, 2)) as decimal(18, 3))
{%- endmacro %}
