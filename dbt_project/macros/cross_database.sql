{#
    The few expressions whose SQL differs between the warehouses this project builds on: DuckDB (the
    `dev` target) and PostgreSQL (the `postgres` target, docs/deploy.md). Each macro dispatches on the
    adapter (`adapter.dispatch`), so a model reads the same on both; another adapter adds its
    `<adapter>__<macro>` here. Everything else in the models is SQL both accept (`->` / `->>` on JSON,
    `interval '1 day' * n`, `bool_or`, `percent_rank`, decimal casts).
    tests/postgres/ builds the project on a real PostgreSQL server and compares every mart with DuckDB's.
#}


{# The `value` of the row with the largest `ordering`; rows where either is NULL are ignored. #}
{% macro arg_max(value, ordering) -%}
    {{ return(adapter.dispatch('arg_max')(value, ordering)) }}
{%- endmacro %}

{% macro default__arg_max(value, ordering) -%}
    arg_max({{ value }}, {{ ordering }})
{%- endmacro %}

{% macro postgres__arg_max(value, ordering) -%}
    (array_agg({{ value }} order by {{ ordering }} desc)
        filter (where {{ value }} is not null and {{ ordering }} is not null))[1]
{%- endmacro %}


{# The `value` of the row with the smallest `ordering`; rows where either is NULL are ignored. #}
{% macro arg_min(value, ordering) -%}
    {{ return(adapter.dispatch('arg_min')(value, ordering)) }}
{%- endmacro %}

{% macro default__arg_min(value, ordering) -%}
    arg_min({{ value }}, {{ ordering }})
{%- endmacro %}

{% macro postgres__arg_min(value, ordering) -%}
    (array_agg({{ value }} order by {{ ordering }} asc)
        filter (where {{ value }} is not null and {{ ordering }} is not null))[1]
{%- endmacro %}


{# Calendar days from `start_at` to `end_at` (day boundaries crossed, in the session's time zone). #}
{% macro days_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('days_between')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__days_between(start_at, end_at) -%}
    date_diff('day', {{ start_at }}, {{ end_at }})
{%- endmacro %}

{% macro postgres__days_between(start_at, end_at) -%}
    (cast({{ end_at }} as date) - cast({{ start_at }} as date))
{%- endmacro %}


{# Whole seconds from `start_at` to `end_at` (Stripe's timestamps are whole seconds). #}
{% macro seconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('seconds_between')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__seconds_between(start_at, end_at) -%}
    date_diff('second', {{ start_at }}, {{ end_at }})
{%- endmacro %}

{% macro postgres__seconds_between(start_at, end_at) -%}
    cast(extract(epoch from ({{ end_at }} - {{ start_at }})) as bigint)
{%- endmacro %}


{#
    Whether the whole of `text` matches the regular expression `pattern` (not just a part of it);
    NULL for a NULL text.
#}
{% macro matches_fully(text, pattern) -%}
    {{ return(adapter.dispatch('matches_fully')(text, pattern)) }}
{%- endmacro %}

{% macro default__matches_fully(text, pattern) -%}
    regexp_full_match({{ text }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__matches_fully(text, pattern) -%}
    ({{ text }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}


{# One row per element of the JSON array `json_array` (a set-returning expression for a select list). #}
{% macro json_array_elements(json_array) -%}
    {{ return(adapter.dispatch('json_array_elements')(json_array)) }}
{%- endmacro %}

{% macro default__json_array_elements(json_array) -%}
    unnest(cast(json_extract({{ json_array }}, '$[*]') as json[]))
{%- endmacro %}

{% macro postgres__json_array_elements(json_array) -%}
    jsonb_array_elements(cast({{ json_array }} as jsonb))
{%- endmacro %}


{#
    `numerator / denominator` as DECIMAL(38, 9), for rounding to fewer decimals afterwards. DuckDB divides
    decimals in DOUBLE: 317.46 / 4 gives 79.36499999…, which `round(…, 2)` takes to 79.36 instead of
    79.37. The cast to 9 decimals first recovers the exact quotient wherever it has at most 9 decimals
    and is below a million (DOUBLE's 15-16 significant digits), so a following `round` rounds half away
    from zero as PostgreSQL's exact NUMERIC division does. NULL when the denominator is 0.
#}
{% macro decimal_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('decimal_divide')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__decimal_divide(numerator, denominator) -%}
    cast({{ numerator }} / nullif({{ denominator }}, 0) as decimal(38, 9))
{%- endmacro %}

{% macro postgres__decimal_divide(numerator, denominator) -%}
    cast(cast({{ numerator }} as numeric) / nullif({{ denominator }}, 0) as decimal(38, 9))
{%- endmacro %}
