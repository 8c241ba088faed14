"""``python -m bench`` (``make bench``): generate data, measure, print a table.

Works on its own database (``<DATABASE_URL's name>_bench``, dropped and recreated) and tenant
``bench``, so it never touches application or test data. Speed is reported, never asserted.

    python -m bench                          # defaults: a few minutes on 2 cores
    python -m bench --contracts 10000 --events 1000000 --workers 4
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--contracts", type=int, default=10_000, help="contracts to generate and bill (default 10,000)")
    p.add_argument(
        "--events", type=int, default=200_000, help="usage events sent through the HTTP API (default 200,000)"
    )
    p.add_argument("--batch", type=int, default=1000, help="events per API batch (≤ 1,000)")
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    p.add_argument("--server-workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="billing worker processes")
    p.add_argument("--chunk", type=int, default=500, help="contracts per billing chunk (as the beat splits them)")
    p.add_argument("--database", default=None, help="bench database name (default <name>_bench)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    from bench.db import base_database_url, database_recreate

    base = base_database_url()
    name = args.database or f"{base.rsplit('/', 1)[1].split('?')[0]}_bench"
    started = time.perf_counter()
    print(f"bench database {name} (recreated)", flush=True)
    os.environ["DATABASE_URL"] = database_recreate(base, name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")
    os.environ["AXES_ENABLED"] = "false"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import schema_context

    from bench import generate, scenarios
    from revexos.tenancy.services.provisioning import tenant_provision

    call_command("migrate_schemas", "--shared", verbosity=0)
    tenant = tenant_provision(
        slug="bench",
        name="Bench Corp",
        admin_email="admin@bench.example",
        admin_password="Bench-password-2026",
        with_api_key=True,
    )
    schema, host = tenant.tenant.schema_name, tenant.domain
    connection.set_schema_to_public()

    from billing.services.context import tenant_today

    with schema_context(schema):
        today = tenant_today()
        month_start, month_end, first = generate.month_bounds(today)
        t = time.perf_counter()
        data = generate.contracts_generate(count=args.contracts, today=today)
        gen_seconds = time.perf_counter() - t
        print(
            f"generated {args.contracts:,} contracts ({data.time_entries:,} time entries) in {gen_seconds:.1f}s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(data.profile_counts.items())),
            flush=True,
        )
        batches = generate.usage_batches(
            usage_contracts=data.usage_contracts,
            events=args.events,
            batch_size=args.batch,
            month_start=month_start,
            month_end=month_end,
        )

    print(f"ingesting {args.events:,} usage events over HTTP…", flush=True)
    ingest = scenarios.ingestion_over_http(
        batches=batches, host=host, api_key=tenant.api_key, server_workers=args.server_workers, clients=args.clients
    )
    connection.close()
    with schema_context(schema):
        ingest.copy_seconds = scenarios.usage_copy_baseline(schema=schema)
        ids = data.contract_ids
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # a production database has statistics; freshly loaded bench data has none
    connection.close()

    print(f"billing {len(ids):,} contracts as of {first}…", flush=True)
    run = scenarios.month_end_run(schema=schema, as_of=first, contract_ids=ids, workers=args.workers, chunk=args.chunk)
    with schema_context(schema):
        run.copy_seconds, lines = scenarios.invoice_copy_baseline(schema=schema)
    run.note += f"; {lines:,} lines"

    print(f"rendering the finance home over {len(ids):,} contracts…", flush=True)
    with schema_context(schema):
        dashboard = scenarios.dashboard_render(host=host, contracts=len(ids))
    print(f"scanning {len(ids):,} contracts for leakage as of {first}…", flush=True)
    with schema_context(schema):
        leakage = scenarios.leakage_scan_run(as_of=first, contracts=len(ids))
    print("integrations: signed webhooks, the inbox, a Harvest import…", flush=True)
    from bench.integrations import integrations_run

    with schema_context(schema):
        integrations = integrations_run(host=host, today=today)
    connection.close()
    rows = [ingest, run, *dashboard, *leakage, *integrations]
    print()
    print(
        f"machine: {platform.machine()} · {os.cpu_count()} cores · {platform.system()} {platform.release()} · Python {platform.python_version()}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]} · total bench time {time.perf_counter() - started:.0f}s")
    header = f"{'scenario':<62} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'COPY rows/s':>12} {'vs COPY':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        p50 = f"{r.p50_ms:.0f}" if r.p50_ms is not None else "–"
        p99 = f"{r.p99_ms:.0f}" if r.p99_ms is not None else "–"
        copy_rate = f"{r.copy_rate:,.0f}" if r.copy_rate else "–"
        ratio = f"{r.rate / r.copy_rate:.3f}" if r.copy_rate else "–"
        print(
            f"{r.scenario:<62} {r.rows:>10,} {r.seconds:>8.1f} {r.rate:>10,.0f} {p50:>8} {p99:>8} {copy_rate:>12} {ratio:>8}"
        )
        print(f"  {r.unit}: {r.note}")
    print(
        "\n'vs COPY' = measured rate ÷ rate of raw COPY of the same rows into an empty copy of the table (same indexes)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
