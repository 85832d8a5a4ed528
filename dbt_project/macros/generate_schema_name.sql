{#
    Use a model's custom schema as-is (`marts.customer_profiles`), not dbt's default
    `<target schema>_<custom schema>` (`main_marts`). Models without one land in the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
