"""Local stand-ins for the Stripe, Mailchimp and Customer.io HTTP APIs, and demo data.

They serve real HTTP on 127.0.0.1 and are as strict as the real APIs (see ../shared/contracts/NOTES.md),
so tests and `make demo` exercise the same code paths as production.
"""
