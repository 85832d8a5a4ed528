"""Benchmarks of the Stripe extraction (``make bench``): see ``bench/run.py`` and ``BENCHMARKS.md``."""
