"""Our reverse ETL, as the Dagster assets run it, from a built warehouse to the destination stand-ins.

    python -m bench.push_ours --destination mailchimp --warehouse W --state S --url URL --key KEY --audience ID
    python -m bench.push_ours --destination customerio --warehouse W --state S --url URL --site-id ID --key KEY
    python -m bench.push_ours ... --change-fraction 0.01   # the nightly run after 1% of the profiles changed

The profiles come from ``marts.customer_profiles`` and ``marts.customer_segments`` of the warehouse ``W`` (a
`dbt build` of a benchmark account), copied once into the state file ``S``, which also keeps what was pushed
(``sync.*``), as the real warehouse does. ``--change-fraction f`` first changes the lifetime spend of a fraction
``f`` of the profiles (and moves a third of those to another spend segment), then pushes again. Prints one JSON
line: profiles, seconds of the whole push (reading the profiles included), counts, API calls, retries.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

# pandas is loaded in the Dagster step process that pushes (the code location imports it); pyarrow loads it when
# it builds its first table, so without this the push would be timed with a one-off import in it.
import pandas  # noqa: F401

from audiences.customerio_client import DEFAULT_CONCURRENCY, DEFAULT_TRACK_REQUESTS_PER_SECOND, CustomerIOClient
from audiences.customerio_sync import sync_people
from audiences.field_mapping import load_mapping
from audiences.mailchimp_client import MailchimpClient
from audiences.mailchimp_sync import sync_members
from audiences.profiles import PROFILES_TABLE, SEGMENTS_TABLE, ProfileSource
from audiences.warehouse import connect
from bench.common import emit

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "dbt_project" / "target" / "manifest.json"


def copy_marts(state: Path, warehouse: Path) -> None:
    with connect(state) as con:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        con.execute("create schema if not exists marts")
        for table in (PROFILES_TABLE, SEGMENTS_TABLE):
            con.execute(f"create table if not exists {table} as select * from wh.{table}")
        con.execute("detach wh")


def change_profiles(state: Path, fraction: float) -> int:
    """Raise the lifetime spend of ``fraction`` of the profiles; a third of them move to spend:high."""
    with connect(state) as con:
        picked = f"hash(customer_id || 'bench') % 10000 < {int(fraction * 10000)}"
        con.execute(f"update {PROFILES_TABLE} set lifetime_spend = lifetime_spend + 1 where {picked}")
        moved = f"{picked} and hash(customer_id) % 3 = 0"
        con.execute(
            f"update {SEGMENTS_TABLE} set segment = 'high', tag = 'spend:high' "
            f"where segment_group = 'spend' and customer_id in (select customer_id from {PROFILES_TABLE} where {moved})"
        )
        return int(con.execute(f"select count(*) from {PROFILES_TABLE} where {picked}").fetchone()[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--destination", choices=("mailchimp", "customerio"), required=True)
    parser.add_argument("--warehouse", type=Path, required=True, help="a warehouse with the marts built")
    parser.add_argument("--state", type=Path, required=True, help="the push's own warehouse (created if missing)")
    parser.add_argument("--url", required=True, help="the stand-in's base URL")
    parser.add_argument("--key", required=True)
    parser.add_argument("--audience", help="Mailchimp audience id")
    parser.add_argument("--site-id", help="Customer.io site id")
    parser.add_argument("--max-connections", type=int, default=10, help="Mailchimp: the resource's default")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="Customer.io: the default")
    parser.add_argument(
        "--rps", type=float, default=DEFAULT_TRACK_REQUESTS_PER_SECOND, help="Customer.io: the default pace"
    )
    parser.add_argument("--change-fraction", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    copy_marts(args.state, args.warehouse)
    changed = change_profiles(args.state, args.change_fraction) if args.change_fraction else 0
    mapping = load_mapping(MANIFEST)
    with connect(args.state) as con:
        profiles = ProfileSource()
        started = time.monotonic()
        if args.destination == "mailchimp":
            mc = MailchimpClient(args.key, api_base=args.url.rstrip("/") + "/3.0", max_connections=args.max_connections)
            result = sync_members(con, mc, args.audience or "", profiles, mapping, max_connections=args.max_connections)
        else:
            cio = CustomerIOClient(
                args.site_id or "",
                args.key,
                base_url=args.url,
                pool_size=args.concurrency,
                requests_per_second=args.rps,
            )
            result = sync_people(con, cio, profiles, mapping, concurrency=args.concurrency)
        seconds = time.monotonic() - started
    emit(
        {
            "tool": "ours",
            "destination": args.destination,
            "mode": "nightly" if args.change_fraction else "first push",
            "profiles": result.considered,
            "profiles_changed": changed,
            "seconds": round(seconds, 3),
            "send_seconds": round(result.send_seconds, 3),
            **result.counts(),
            "planned": result.planned,
            "rejection_reasons": sorted({r.reason.split(":")[0] for r in result.rejections})[:10],
        }
    )


if __name__ == "__main__":
    main()
