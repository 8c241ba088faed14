"""``python -m bench`` (``make bench``): generate data, measure, print a table.

Works on its own database (``<DATABASE_URL's name>_bench``, a fresh copy of a cached base each run; the
previous run's is dropped in the background) and tenant ``bench``, so it never touches application or
test data. Speed is reported, never asserted.

    python -m bench                          # the issue's sizes: about 14 minutes on 2 cores, 9 of them cloning 1,000 tenants
    python -m bench --quick                  # under 2 minutes (105 s measured): 500 contracts, 4 tenants, 10 deliveries
    python -m bench --tenants 300 --contracts 5000
    python -m bench --only month-end         # that figure alone (generation, events, the run)
    python -m bench --only ingestion         # usage events over HTTP beside COPY, alone
    make bench BENCH_ARGS="--quick"          # the same through make
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
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short run (under 2 minutes on 2 cores, 105 s measured): 500 contracts, 10,000 events, "
        "4 tenants, 10 deliveries, 2 sign-ups; every row still printed",
    )
    p.add_argument("--contracts", type=int, default=None, help="contracts to generate and bill (default 10,000)")
    p.add_argument("--events", type=int, default=None, help="usage events sent through the HTTP API (default 200,000)")
    p.add_argument("--tenants", type=int, default=None, help="small tenants for the idle beat (default 1,000)")
    p.add_argument("--deliveries", type=int, default=None, help="delivery events timed to the e-mail (default 100)")
    p.add_argument(
        "--delivery-interval",
        type=float,
        default=0.5,
        help="seconds between delivery events (default 0.5: latency, not a burst's queue; 0.1 to load the worker)",
    )
    p.add_argument("--renders", type=int, default=None, help="renders per dashboard and PDF (default 20)")
    p.add_argument("--signups", type=int, default=None, help="tenant provisionings timed (default 5)")
    p.add_argument("--batch", type=int, default=1000, help="events per API batch (≤ 1,000)")
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    p.add_argument("--server-workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    p.add_argument("--workers", type=int, default=2, help="billing worker processes (default 2)")
    p.add_argument("--chunk", type=int, default=500, help="contracts per billing chunk (as the beat splits them)")
    p.add_argument("--skip-extras", action="store_true", help="leave out the leakage and integrations rows")
    p.add_argument("--database", default=None, help="bench database name (default <name>_bench)")
    p.add_argument(
        "--only",
        choices=["month-end", "ingestion"],
        default=None,
        help="measure one figure alone, to iterate on it (for month-end the events are ingested in-process, "
        "not over HTTP); a full run prints every row",
    )
    args = p.parse_args(argv)
    # --quick trims what costs most and measures least: the idle beat's clones (seconds each on a busy
    # disk), delivery events one every 0.5 s, generated contracts.
    quick = {"contracts": 500, "events": 10_000, "tenants": 4, "deliveries": 10, "renders": 5, "signups": 2}
    full = {"contracts": 10_000, "events": 200_000, "tenants": 1000, "deliveries": 100, "renders": 20, "signups": 5}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        args.skip_extras = True
    return args


def machine() -> str:
    ram = "?"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        ram = f"{kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"{platform.machine()} · {os.cpu_count()} cores · {ram} · {platform.system()} {platform.release()} · "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str]) -> int:
    args = parse(argv)
    from bench.db import base_database_url, database_from_base

    base = base_database_url()
    name = args.database or f"{base.rsplit('/', 1)[1].split('?')[0]}_bench"
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    t = time.perf_counter()
    os.environ["DATABASE_URL"], rebuilt = database_from_base(base, name)
    print(
        f"bench database {name}: a copy of {name}_base ({'rebuilt: migrations changed, ' if rebuilt else ''}"
        f"{time.perf_counter() - t:.0f}s){' — quick run' if args.quick else ''}",
        flush=True,
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")
    os.environ["AXES_ENABLED"] = "false"
    # Files of this run only (PDFs are stored once by name: a previous run's would be found and reused).
    import shutil
    import tempfile

    media = tempfile.mkdtemp(prefix="revexos-bench-media-")
    os.environ["MEDIA_ROOT"] = media

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import schema_context, tenant_context

    from bench import figures, generate, scenarios
    from revexos.tenancy.services.provisioning import tenant_provision
    from revexos.tenancy.services.template import tenant_template_refresh

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    print(f"PostgreSQL {pg_version}", flush=True)
    call_command("migrate_schemas", "--shared", verbosity=0)  # no-ops on the current base
    tenant_template_refresh()  # likewise (deploy runs ``tenant_template``); sign-ups clone it
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

    if args.only == "month-end":
        print(f"ingesting {args.events:,} usage events in-process…", flush=True)
        from billing.services.ingestion import usage_events_ingest

        with schema_context(schema):
            for batch in batches:
                usage_events_ingest(events=batch)
    else:
        print(f"ingesting {args.events:,} usage events over HTTP…", flush=True)
        ingest = scenarios.ingestion_over_http(
            batches=batches, host=host, api_key=tenant.api_key, server_workers=args.server_workers, clients=args.clients
        )
    connection.close()
    with schema_context(schema):
        if args.only != "month-end":
            ingest.copy_seconds = scenarios.usage_copy_baseline(schema=schema)
        if args.only == "ingestion":
            ratio = ingest.rate / ingest.copy_rate
            print(
                f"\n{ingest.scenario}: {ingest.rows:,} {ingest.unit} in {ingest.seconds:.1f} s = {ingest.rate:,.0f}/s, "
                f"{ratio:.3f} × COPY ({ingest.copy_rate:,.0f} rows/s)\n  {ingest.note}; p50 {ingest.p50_ms:.0f} ms, "
                f"p99 {ingest.p99_ms:.0f} ms per batch\n  target ≥ 0.2 × COPY: {'yes' if ratio >= 0.2 else 'NO'}"
            )
            return 0
        ids = data.contract_ids
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # a production database has statistics; freshly loaded bench data has none
    connection.close()

    print(f"month-end run: billing {len(ids):,} contracts as of {first} in {args.workers} processes…", flush=True)
    run = scenarios.month_end_run(schema=schema, as_of=first, contract_ids=ids, workers=args.workers, chunk=args.chunk)
    with schema_context(schema):
        run.copy_seconds, lines = scenarios.invoice_copy_baseline(schema=schema)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    run.note += f"; {lines:,} lines"
    if args.only == "month-end":
        ratio = run.rate / run.copy_rate if run.copy_rate else 0.0
        print(
            f"\n{run.scenario}: {run.rows:,} {run.unit} in {run.seconds:.1f} s = {run.rate:,.0f}/s, {ratio:.3f} × COPY"
        )
        print(f"  {run.note}")
        print(
            f"  target ≥ 330 invoices/s (≤ 30 s), ≥ 0.01 × COPY: {'yes' if run.rate >= 330 and ratio >= 0.01 else 'NO'}"
        )
        return 0

    with schema_context(schema):
        figures.dashboards_users(customers_owned=max(10, len(ids) // 20))
        refreshed = figures.projections_refresh()
    print(f"dashboards over {len(ids):,} contracts ({refreshed}), {args.renders} renders each…", flush=True)
    with schema_context(schema):
        dashboards = figures.dashboards_render(host=host, contracts=len(ids), renders=args.renders)
    print("invoice PDF beside a bare WeasyPrint page…", flush=True)
    # As a worker renders it: the task sets the tenant itself (tenant-schemas-celery), not a stand-in.
    with tenant_context(tenant.tenant):
        pdf = figures.invoice_pdf_ratio(renders=max(args.renders, 40))
    connection.close()

    print(f"delivery: {args.deliveries} milestone events → invoice, PDF, e-mail (real worker and SMTP)…", flush=True)
    delivery = figures.delivery_latency(
        host=host,
        api_key=tenant.api_key,
        schema=schema,
        events=args.deliveries,
        today=today,
        workers=2,
        interval=args.delivery_interval,
    )

    print(f"tenant provisioning × {args.signups}…", flush=True)
    signup = figures.provisioning(count=args.signups)
    print(f"idle beat: cloning {args.tenants:,} small tenants, then one billing beat over them…", flush=True)
    beat, clones = figures.idle_beat(tenants=args.tenants, processes=2)

    extras = []
    if not args.skip_extras:
        print(f"scanning {len(ids):,} contracts for leakage as of {first}…", flush=True)
        with schema_context(schema):
            extras += scenarios.leakage_scan_run(as_of=first, contracts=len(ids))
        print("integrations: signed webhooks, the inbox, a Harvest import…", flush=True)
        from bench.integrations import integrations_run

        with schema_context(schema):
            extras += integrations_run(host=host, today=today)
    connection.close()

    shutil.rmtree(media, ignore_errors=True)
    rows = [ingest, run, *dashboards, pdf, delivery, signup, clones, beat, *extras]
    total = time.perf_counter() - started
    print()
    print(f"machine: {machine()}")
    print(f"PostgreSQL {pg_version} · total bench time {total:.0f}s{' (quick)' if args.quick else ''}")
    header = (
        f"{'scenario':<62} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'max ms':>8} {'COPY rows/s':>12} {'vs COPY':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:

        def ms(v):
            return f"{v:.0f}" if v is not None else "–"

        copy_rate = f"{r.copy_rate:,.0f}" if r.copy_rate else "–"
        ratio = f"{r.rate / r.copy_rate:.3f}" if r.copy_rate else "–"
        print(
            f"{r.scenario[:62]:<62} {r.rows:>10,} {r.seconds:>8.1f} {r.rate:>10,.0f} {ms(r.p50_ms):>8} "
            f"{ms(r.p95_ms):>8} {ms(r.p99_ms):>8} {copy_rate:>12} {ratio:>8}"
        )
        print(f"  {r.unit}: {r.note}")
    print(
        "\n'vs COPY' = measured rate ÷ rate of raw COPY of the same rows into an empty copy of the table (same indexes)."
    )
    print()
    print(
        issue_table(
            args=args,
            ingest=ingest,
            run=run,
            dashboards=dashboards,
            pdf=pdf,
            delivery=delivery,
            signup=signup,
            beat=beat,
        )
    )
    return 0


def issue_table(*, args, ingest, run, dashboards, pdf, delivery, signup, beat) -> str:
    """The issue's targets, measured: figure | measured | target | ok?"""
    rows: list[tuple[str, str, str, bool]] = []
    run_ratio = run.rate / run.copy_rate if run.copy_rate else 0.0
    rows.append(
        (
            f"month-end run, {args.contracts:,} mixed contracts, {args.workers} worker processes",
            f"{run.rate:,.0f} invoices/s ({run.seconds:.1f} s), {run_ratio:.3f} × COPY",
            "≥ 330 invoices/s (≤ 30 s), ≥ 0.01 × COPY",
            run.rate >= 330 and run_ratio >= 0.01,
        )
    )
    for d in dashboards:
        rows.append(
            (
                d.scenario.split(" (/")[0],
                f"{d.p95_ms:,.0f} ms p95 (p50 {d.p50_ms:,.0f}), {d.queries} queries",
                "≤ 150 ms p95, flat query count",
                d.p95_ms <= 150,
            )
        )
    rows.append(
        (
            "one-page invoice PDF",
            f"{pdf.p50_ms:.0f} ms = {pdf.ratio:.2f} × bare page ({pdf.bare_ms:.0f} ms)",
            "≤ 1.5 × a bare one-page document",
            pdf.ratio <= 1.5,
        )
    )
    rows.append(
        (
            f"delivery event → invoice, PDF stored, e-mail accepted ({delivery.rows} events, "
            f"one every {args.delivery_interval:g} s)",
            f"{delivery.p95_ms / 1000:.2f} s p95 (p50 {delivery.p50_ms / 1000:.2f} s)"
            + ("" if delivery.complete else " — INCOMPLETE"),
            "p95 ≤ 10 s over 100 events",
            delivery.complete and delivery.p95_ms <= 10_000,
        )
    )
    rows.append(
        (
            f"idle beat cycle over {beat.rows:,} small tenants (target scaled to N)",
            f"{beat.seconds:.1f} s, ≤ {beat.queries} queries per idle tenant",
            "≤ 60 s (1,000 tenants), ≤ 5 queries per idle tenant",
            beat.seconds * 1000 / max(beat.rows, 1) <= 60 and beat.queries <= 5,
        )
    )
    rows.append(
        (
            "tenant provisioning (sign-up)",
            f"{signup.p50_ms / 1000:.2f} s p50, {signup.p95_ms / 1000:.2f} s p95 ({signup.rows} sign-ups)",
            "≤ 2 s",
            signup.p95_ms <= 2000,
        )
    )
    ingest_ratio = ingest.rate / ingest.copy_rate if ingest.copy_rate else 0.0
    rows.append(
        (
            "usage ingestion over HTTP",
            f"{ingest.rate:,.0f} events/s, {ingest_ratio:.3f} × COPY",
            "≥ 0.2 × COPY",
            ingest_ratio >= 0.2,
        )
    )
    rows.append(
        (
            "worker memory during the month-end run",
            f"{run.max_rss_mb:.0f} MB max RSS per billing worker",
            "≤ 500 MB RSS per worker",
            run.max_rss_mb <= 500,
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("figure", "measured", "target"), strict=True)]
    out = [
        f"| {'figure':<{widths[0]}} | {'measured':<{widths[1]}} | {'target':<{widths[2]}} | ok? |",
        f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|-----|",
    ]
    for figure, measured, target, ok in rows:
        out.append(
            f"| {figure:<{widths[0]}} | {measured:<{widths[1]}} | {target:<{widths[2]}} | {'yes' if ok else 'NO':<3} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
