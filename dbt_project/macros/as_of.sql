{#
    The moment "now" for time-based rules (days since the last purchase, purchases in the last 90
    days, lifecycle stages): the var `as_of` when set (an ISO timestamp, e.g. to rebuild the marts as
    they were on a given day, or to pin unit tests), the current time otherwise.
#}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as timestamp with time zone)
    {%- else -%}
        current_timestamp
    {%- endif -%}
{%- endmacro %}
