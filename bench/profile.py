"""``python -m bench.profile``: cProfile and query counts of one billing run over generated contracts.

Works on its own database (``<name>_profile``, recreated). Prints the run's time, queries per
contract and the top functions by own time and by cumulative time, for the chunked run (the
month-end path) and, on a copy of the same portfolio, the per-contract path.

    python -m bench.profile --contracts 2000 --events 50000
    python -m bench.profile --reuse          # the same portfolio again (kept as ``<name>_profile_portfolio``)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--contracts", type=int, default=2000)
    p.add_argument("--events", type=int, default=40_000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--per-contract", action="store_true", help="profile the per-contract path instead")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="bill a copy of the portfolio the last run of the same size generated (skips generating and ingesting)",
    )
    args = p.parse_args(argv)

    import psycopg

    from bench.db import base_database_url, bench_url, conninfo, database_from_base

    base = base_database_url()
    stem = base.rsplit("/", 1)[1].split("?")[0]
    portfolio, label = f"{stem}_profile_portfolio", f"{args.contracts} contracts, {args.events} events"
    with psycopg.connect(**dict(conninfo(base), dbname="postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [portfolio]
        ).fetchone()
        reuse = args.reuse and row is not None and row[0] == label
        if reuse:
            conn.execute(f'DROP DATABASE IF EXISTS "{stem}_profile" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{stem}_profile" TEMPLATE "{portfolio}"')
            os.environ["DATABASE_URL"] = bench_url(base, f"{stem}_profile")
    if not reuse:
        # A copy of the bench's cached base database (public migrated, tenant template current).
        os.environ["DATABASE_URL"], _ = database_from_base(base, f"{stem}_profile", base_name=f"{stem}_bench_base")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from bench import generate
    from billing.services.context import tenant_today
    from billing.services.ingestion import usage_events_ingest
    from contracts.models import Contract
    from revexos.tenancy.models import Tenant
    from revexos.tenancy.services.provisioning import tenant_provision

    if reuse:
        schema = Tenant.objects.get(slug="profile").schema_name
    else:
        call_command("migrate_schemas", "--shared", verbosity=0)
        tenant = tenant_provision(
            slug="profile", name="Profile Corp", admin_email="admin@profile.example", admin_password="Profile-pass-2026"
        )
        schema = tenant.tenant.schema_name
        with schema_context(schema):
            month_start, month_end, _ = generate.month_bounds(tenant_today())
            data = generate.contracts_generate(count=args.contracts, today=tenant_today())
            for batch in generate.usage_batches(
                usage_contracts=data.usage_contracts,
                events=args.events,
                batch_size=1000,
                month_start=month_start,
                month_end=month_end,
            ):
                usage_events_ingest(events=batch)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        connection.close()
        with psycopg.connect(**dict(conninfo(base), dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{portfolio}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{portfolio}" TEMPLATE "{stem}_profile"')
            conn.execute(f"COMMENT ON DATABASE \"{portfolio}\" IS '{label}'")
    with schema_context(schema):
        first = generate.month_bounds(tenant_today())[2]
        contract_ids = list(Contract.objects.order_by("pk").values_list("pk", flat=True))
        from billing.services.runs import billing_run, billing_run_chunked

        run = billing_run if args.per_contract else billing_run_chunked
        profiler = cProfile.Profile()
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            profiler.enable()
            summary = run(as_of=first, contract_ids=contract_ids)
            profiler.disable()
            seconds = time.perf_counter() - began
    path = "per-contract" if args.per_contract else "chunked"
    print(
        f"{path} run: {len(contract_ids):,} contracts, {summary['invoices_created']:,} invoices in "
        f"{seconds:.1f}s ({summary['invoices_created'] / seconds:,.0f} invoices/s under the profiler), "
        f"{len(queries.captured_queries):,} queries ({len(queries.captured_queries) / len(contract_ids):.2f} "
        f"per contract), {len(summary['errors'])} errors"
    )
    by_statement: dict[str, list[float]] = {}
    for q in queries.captured_queries:  # Django's clock: the statement's send, wait and fetch
        by_statement.setdefault(" ".join(q["sql"].split())[:110], []).append(float(q["time"]))
    print(f"\n--- top {min(args.top, 15)} statements by total time (seconds, count)")
    for sql, times in sorted(by_statement.items(), key=lambda kv: -sum(kv[1]))[: min(args.top, 15)]:
        print(f"{sum(times):7.2f} {len(times):5} {sql}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        print(f"\n--- top {args.top} by {order}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
