"""Dagster assets: Stripe extract, dbt models, and the pushes to Mailchimp and Customer.io."""
