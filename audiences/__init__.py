"""Stripe Audiences: the library behind the Dagster assets.

- ``stripe_streams`` / ``stripe_extract``: what to pull from Stripe and how it lands in DuckDB.
- ``warehouse``: DuckDB connections and bulk upserts.
- ``sync_state``: change detection and rejection records shared by every destination.
- ``mailchimp_client`` / ``customerio_client``: HTTP clients that know their API and nothing else.
- ``mailchimp_sync`` / ``customerio_sync``: turn profiles into destination operations.
"""
