"""Bench scenarios. Each returns a Row: what was measured, beside raw PostgreSQL COPY of the same rows."""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    scenario: str
    rows: int
    seconds: float
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    copy_seconds: float | None = None
    note: str = ""
    max_rss_mb: float | None = None
    p95_ms: float | None = None
    queries: int | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def copy_rate(self) -> float | None:
        return self.rows / self.copy_seconds if self.copy_seconds else None


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real gunicorn serving the app on 127.0.0.1 against the bench database."""

    def __init__(self, *, workers: int, host: str):
        self.port = _free_port()
        self.host = host
        env = dict(
            os.environ,
            DEBUG="false",
            LOG_LEVEL="WARNING",
            AXES_ENABLED="false",
            PYTHONWARNINGS="ignore:No directory at:UserWarning",
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "revexos.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                "--log-level",
                "warning",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited during start-up")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/health", headers={"Host": self.host})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def ingestion_over_http(
    *, batches: list[list[dict]], host: str, api_key: str, server_workers: int, clients: int
) -> Row:
    """POST every batch to /api/v1/usage-events from ``clients`` keep-alive connections."""
    server = Server(workers=server_workers, host=host)
    try:
        server.wait_ready()
        todo: queue.Queue = queue.Queue()
        for batch in batches:
            todo.put(json.dumps({"events": batch}).encode())
        latencies: list[float] = []
        failures: list[str] = []
        accepted = [0]
        lock = threading.Lock()

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            headers = {"Host": host, "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
            while True:
                try:
                    body = todo.get_nowait()
                except queue.Empty:
                    return
                began = time.perf_counter()
                conn.request("POST", "/api/v1/usage-events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    if response.status != 202:
                        failures.append(f"{response.status}: {payload[:300]!r}")
                    else:
                        accepted[0] += json.loads(payload)["accepted"]

        began = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - began
    finally:
        server.stop()
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, e.g. {failures[0]}")
    events = sum(len(b) for b in batches)
    return Row(
        scenario=f"usage ingestion, HTTP API ({clients} clients, {server_workers} gunicorn workers)",
        rows=events,
        seconds=seconds,
        unit="events",
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        note=f"{len(batches)} batches of ≤1,000; {accepted[0]:,} accepted",
    )


def copy_rows(*, table: str, columns: list[str], rows_sql: str, schema: str) -> float:
    """Seconds to COPY the rows selected by ``rows_sql`` into an empty copy of ``table`` (same indexes)."""
    from django.db import connection

    scratch = f"bench_copy_{table}"
    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}", public')
        cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
        cursor.execute(
            f"CREATE TABLE {scratch} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES INCLUDING CONSTRAINTS)"
        )
        buffer = []
        with cursor.copy(f"COPY ({rows_sql}) TO STDOUT") as out:
            for chunk in out:
                buffer.append(bytes(chunk))
        data = b"".join(buffer)
        began = time.perf_counter()
        with cursor.copy(f"COPY {scratch} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(data)
        seconds = time.perf_counter() - began
        cursor.execute(f"DROP TABLE {scratch}")
    return seconds


def usage_copy_baseline(*, schema: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}", public')
    cols = _stored_columns("billing_usageevent")
    return copy_rows(
        table="billing_usageevent",
        columns=cols,
        schema=schema,
        rows_sql=f"SELECT {', '.join(cols)} FROM billing_usageevent",
    )


def _backend_cpu_seconds() -> float:
    """CPU time of this connection's PostgreSQL backend so far (the server runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:  # a server elsewhere: not counted
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_start(ready=None) -> None:
    """A billing worker ready for work, as a Celery worker is before the run: Django loaded, connected."""
    import django

    django.setup()
    from django.db import connection

    connection.ensure_connection()
    if ready is not None:
        ready.wait()


def _billing_worker(args) -> dict:
    """One billing worker process (like one Celery worker taking chunks of the month-end run)."""
    import resource

    _worker_start()
    from django_tenants.utils import schema_context

    from billing.services.runs import billing_run_chunked

    schema, as_of, ids = args
    cpu = time.process_time()
    with schema_context(schema):
        backend = _backend_cpu_seconds()
        summary = billing_run_chunked(as_of=date.fromisoformat(as_of), contract_ids=ids)
        backend = _backend_cpu_seconds() - backend
    return {
        "invoices": summary["invoices_created"],
        "errors": summary["errors"][:3],
        "pid": os.getpid(),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "cpu": time.process_time() - cpu,
        "backend_cpu": backend,
    }


class _LockWaits:
    """Samples the bench database's backends every 50 ms: how often a worker waits on a lock
    (another chunk's rows or counters) rather than working."""

    def __init__(self):
        import psycopg

        from bench.db import conninfo

        self.samples = self.waiting = 0
        self._stop = threading.Event()
        self._conn = psycopg.connect(**conninfo(os.environ["DATABASE_URL"]), autocommit=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            rows = self._conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE datname = current_database() "
                "AND state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
            self.samples += len(rows)
            self.waiting += sum(1 for (kind,) in rows if kind == "Lock")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def share(self) -> float:
        return self.waiting / self.samples if self.samples else 0.0


def month_end_run(*, schema: str, as_of: date, contract_ids: list[int], workers: int, chunk: int) -> Row:
    """The month-end billing run over every contract, in ``workers`` processes taking chunks.

    The clock starts once the workers are up (Python started, Django loaded, connected), as Celery
    workers are when the beat enqueues a run; that start-up is reported beside the figure. CPU
    seconds of the workers and of their PostgreSQL backends are reported too: on a shared machine
    they compare two runs better than the wall clock."""
    import multiprocessing

    chunks = [(schema, as_of.isoformat(), contract_ids[i : i + chunk]) for i in range(0, len(contract_ids), chunk)]
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    started = time.perf_counter()
    with context.Pool(workers, initializer=_worker_start, initargs=(ready,)) as pool:
        ready.wait()  # every worker has started
        startup = time.perf_counter() - started
        waits = _LockWaits()
        began = time.perf_counter()
        results = pool.map(_billing_worker, chunks, chunksize=1)
        seconds = time.perf_counter() - began
        waits.stop()
    errors = [e for r in results for e in r["errors"]]
    if errors:
        raise RuntimeError(f"billing errors, e.g. {errors[0]}")
    invoices = sum(r["invoices"] for r in results)
    rss: dict[int, float] = {}
    for r in results:
        rss[r["pid"]] = max(rss.get(r["pid"], 0.0), r["max_rss_mb"])
    row = Row(
        scenario=f"month-end billing run ({workers} worker processes, chunks of {chunk})",
        rows=invoices,
        seconds=seconds,
        unit="invoices",
        note=(
            f"{len(contract_ids):,} contracts; CPU {sum(r['cpu'] for r in results):.1f} s in the workers, "
            f"{sum(r['backend_cpu'] for r in results):.1f} s in their PostgreSQL backends; workers started in "
            f"{startup:.1f} s before the clock; waiting on a lock {waits.share():.0%} of their time in a transaction; max RSS per worker {', '.join(f'{v:.0f} MB' for v in rss.values())}"
        ),
    )
    row.max_rss_mb = max(rss.values()) if rss else 0.0
    return row


def _stored_columns(table: str) -> list[str]:
    """The table's columns a COPY writes: all but dropped and generated ones (``amount_open`` is computed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [table],
        )
        return [f'"{name}"' for (name,) in cursor.fetchall()]


def invoice_copy_baseline(*, schema: str) -> tuple[float, int]:
    """COPY the invoices and lines the run produced into empty copies: (seconds, lines).

    Every stored column is copied (read from the catalog), so new invoice columns — NOT NULL ones
    like ``written_off`` included — never break the baseline."""
    from django.db import connection

    seconds = 0.0
    for table in ("billing_invoice", "billing_invoiceline"):
        with connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}", public')
        columns = _stored_columns(table)
        seconds += copy_rows(
            table=table, columns=columns, schema=schema, rows_sql=f"SELECT {', '.join(columns)} FROM {table}"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_invoiceline")
        lines = cursor.fetchone()[0]
    return seconds, lines


def dashboard_render(*, host: str, contracts: int, renders: int = 3) -> list[Row]:
    """The finance home over the whole bench portfolio, through the Django test client as the
    tenant admin (whose home carries the finance dashboard): time per render and query count,
    computed afresh (``?refresh=1``) and from the per-tenant cache of the portfolio figures."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from revexos.accounts.models import User

    client = Client(HTTP_HOST=host)
    client.force_login(User.objects.get(email="admin@bench.example"))

    def measure(path: str, label: str) -> Row:
        timings: list[float] = []
        queries = 0
        for _ in range(renders):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                response = client.get(path)
                timings.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"the finance home answered {response.status_code}")
            queries = len(captured.captured_queries)
        return Row(
            scenario=f"finance home render, {label} (test client)",
            rows=contracts,
            seconds=_percentile(timings, 50),
            unit="contracts per render",
            p50_ms=_percentile(timings, 50) * 1000,
            p99_ms=max(timings) * 1000,
            note=f"{queries} queries per render, {renders} renders, {len(response.content):,} bytes",
        )

    return [measure("/?refresh=1", "figures computed"), measure("/", "figures cached")]


def leakage_scan_run(*, as_of: date, contracts: int) -> list[Row]:
    """The leakage scan (rules L1–L10) over the whole bench portfolio.

    1. as of the billing run's date, right after it: the clean steady state (what the nightly
       cycle step costs when billing kept up); then a rescan of the same day;
    2. as of one month later with that month's billing not run yet: every due retainer period,
       closed T&M and usage period is a finding — the heavy case (create findings + review tasks);
    3. a rescan of that day: the upsert path (refresh by fingerprint, nothing new).
    """
    from insights.services.leakage import leakage_scan
    from revexos.pricing import add_months

    def timed(day):
        began = time.perf_counter()
        result = leakage_scan(as_of=day)
        return result, time.perf_counter() - began

    clean, clean_s = timed(as_of)
    later = add_months(as_of, 1)
    heavy, heavy_s = timed(later)
    again, again_s = timed(later)
    from django.db.models import Count

    from insights.models import LeakageFinding

    by_rule = dict(
        LeakageFinding.objects.filter(status="open")
        .values_list("rule")
        .annotate(n=Count("id"))
        .values_list("rule", "n")
    )
    return [
        Row(
            scenario=f"leakage scan L1–L10 as of {as_of} (after billing)",
            rows=contracts,
            seconds=clean_s,
            unit="contracts scanned",
            note=f"{clean.found:,} findings",
        ),
        Row(
            scenario=f"leakage scan as of {later} (month not billed yet)",
            rows=heavy.found,
            seconds=heavy_s,
            unit="findings created",
            note=(
                f"{contracts:,} contracts; {heavy.created:,} findings and {heavy.review_tasks_opened:,} "
                f"review tasks created; open by rule {dict(sorted(by_rule.items()))}"
            ),
        ),
        Row(
            scenario="leakage rescan of the same day (upsert by fingerprint)",
            rows=again.found,
            seconds=again_s,
            unit="findings refreshed",
            note=f"{again.created} new, {again.updated:,} refreshed, {again.resolved} resolved",
        ),
    ]
