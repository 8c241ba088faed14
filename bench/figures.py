"""The issue-15 figures beside the throughput scenarios: dashboards, the invoice PDF, delivery latency,
tenant provisioning and the idle beat over many tenants. Each returns a ``Row`` (bench/scenarios.py)."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date

from bench.scenarios import ROOT, Row, Server, _percentile


def _p(values: list[float], pct: float) -> float:
    return _percentile(values, pct) * 1000


# ----------------------------------------------------------------------------- dashboards


def dashboards_users(*, customers_owned: int) -> str:
    """An account manager owning ``customers_owned`` customers (for the AM home); returns the e-mail."""
    from contracts.models import Customer
    from revexos.accounts.models import Role, User
    from revexos.accounts.services import user_create

    email = "am@bench.example"
    if not User.objects.filter(email=email).exists():
        user_create(email=email, password="Bench-password-2026", role=Role.ACCOUNT_MANAGER, full_name="Avery Manager")
    user = User.objects.get(email=email)
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:customers_owned])
    Customer.objects.filter(pk__in=ids).update(owner=user)
    return email


def _projections():
    try:
        from insights.services import projections
    except ImportError:
        return None
    return projections if hasattr(projections, "projections_refresh") else None


def projections_refresh() -> str:
    """Stored dashboard projections, when the app has them (``insights``): filled once before timing,
    as the cycle and the events that change their inputs keep them in production."""
    projections = _projections()
    if projections is None:
        return "no stored projections"
    began = time.perf_counter()
    projections.projections_refresh()
    seconds = time.perf_counter() - began
    # The month-end run marked every customer dirty and the refresh deleted the marks: tens of
    # thousands of dead rows that autovacuum clears within a minute in production (this server may
    # run without it), and that every page's "anything stale?" query would otherwise wade through.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return f"projections refreshed in {seconds:.1f}s"


def dashboards() -> list[tuple[str, str, str]]:
    """(figure, path, user) per dashboard. With stored projections the home's figures are always fresh
    (``/``; ``?refresh=1`` recomputes every projection); before them, ``?refresh=1`` skipped the cache."""
    stored = _projections() is not None
    return [
        ("finance home, figures computed fresh", "/" if stored else "/?refresh=1", "admin@bench.example"),
        *DASHBOARDS,
        *(
            [("forecast chart, 12 months", "/insights/forecast/chart/?months=12", "admin@bench.example")]
            if stored
            else []
        ),
    ]


RENDER_BUDGET_SECONDS = 20  # per dashboard; at least 3 renders are timed whatever they cost

DASHBOARDS = [
    # (figure, path, user); the finance home is added by ``dashboards()``
    ("forecast, 12 months", "/insights/forecast/?months=12", "admin@bench.example"),
    ("contract value", "/insights/contract-value/", "admin@bench.example"),
    ("renewals at risk", "/insights/at-risk/", "admin@bench.example"),
    ("leakage findings list", "/insights/leakage/", "admin@bench.example"),
    ("account manager home", "/", "am@bench.example"),
]


def dashboards_render(*, host: str, contracts: int, renders: int) -> list[Row]:
    """Each dashboard through the Django test client as its user: p50/p95 per render, queries per render."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from revexos.accounts.models import User

    clients: dict[str, Client] = {}
    rows = []
    for figure, path, email in dashboards():
        client = clients.get(email)
        if client is None:
            client = clients[email] = Client(HTTP_HOST=host)
            client.force_login(User.objects.get(email=email))
        warm = client.get(path)  # templates compiled, first connection
        timings: list[float] = []
        queries = 0
        size = 0
        budget = time.perf_counter() + RENDER_BUDGET_SECONDS
        for n in range(renders if warm.status_code == 200 else 0):
            if n >= 3 and time.perf_counter() > budget:  # a slow dashboard: fewer renders, not minutes
                break
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                response = client.get(path)
                timings.append(time.perf_counter() - began)
            queries = max(queries, len(captured.captured_queries))
            size = len(response.content)
        if not timings:  # reported in the table as failed, the other figures still measured
            rows.append(
                Row(
                    scenario=f"{figure} ({path})",
                    rows=contracts,
                    seconds=0.0,
                    unit="contracts per render",
                    p50_ms=float("inf"),
                    p95_ms=float("inf"),
                    queries=0,
                    note=f"answered {warm.status_code}: not timed",
                )
            )
            continue
        rows.append(
            Row(
                scenario=f"{figure} ({path})",
                rows=contracts,
                seconds=statistics.median(timings),
                unit="contracts per render",
                p50_ms=_p(timings, 50),
                p95_ms=_p(timings, 95),
                p99_ms=max(timings) * 1000,
                queries=queries,
                note=f"{queries} queries per render, {len(timings)} renders, {size:,} bytes",
            )
        )
    return rows


# ----------------------------------------------------------------------------- invoice PDF


def invoice_pdf_ratio(*, renders: int) -> Row:
    """A one-page invoice of the run beside a bare one-page WeasyPrint document, same process.

    The bare document is WeasyPrint's default call, as any one-off caller makes it: it builds its
    URL fetcher (an HTTPS context) and font configuration each time, which ``revexos.pdf`` keeps
    per worker thread. The note also prints the bare page rendered through ``revexos.pdf``, with
    the same reuse the invoice gets, so the ratio can be read both ways. Renders alternate (bare,
    invoice, bare, …) so a busy machine weighs on both sides alike."""
    from weasyprint import HTML

    from billing.models import Invoice
    from billing.services.pdf import invoice_pdf_render
    from revexos.pdf import pdf_render

    invoice = (
        Invoice.objects.exclude(status="draft")
        .select_related("customer", "contract", "issuing_entity")
        .order_by("pk")
        .first()
    )
    kinds = {
        "bare": lambda: HTML(string="<p>Invoice</p>").write_pdf(),
        "bare_reused": lambda: pdf_render("<p>Invoice</p>"),
        "invoice": lambda: invoice_pdf_render(invoice=invoice),
    }
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    for render in kinds.values():
        render()  # warm
    for _ in range(renders):
        for kind, render in kinds.items():
            began = time.perf_counter()
            render()
            timings[kind].append(time.perf_counter() - began)
    bare, real = timings["bare"], timings["invoice"]
    ratio = statistics.median(real) / statistics.median(bare)
    row = Row(
        scenario="one-page invoice PDF (context, template, WeasyPrint) vs a bare one-page document",
        rows=renders,
        seconds=statistics.median(real),
        unit="renders",
        p50_ms=_p(real, 50),
        p95_ms=_p(real, 95),
        p99_ms=max(real) * 1000,
        note=f"bare document p50 {_p(bare, 50):.0f} ms (through revexos.pdf's reuse {_p(timings['bare_reused'], 50):.0f} ms); "
        f"invoice p50 {_p(real, 50):.0f} ms = {ratio:.2f} × bare",
    )
    row.ratio = ratio
    row.bare_ms = _p(bare, 50)
    return row


# ----------------------------------------------------------------------------- delivery latency


class Worker:
    """A real Celery worker serving every queue of a private queue name, against the bench database."""

    def __init__(self, *, env: dict, concurrency: int):
        queue = env["CELERY_QUEUE"]
        queues = ",".join([queue, f"{queue}.billing", f"{queue}.delivery", f"{queue}.integrations"])
        self.name = f"bench-{uuid.uuid4().hex[:6]}"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "revexos", "worker", "-l", "WARNING"),
                *("--concurrency", str(concurrency), "-Q", queues, "-n", f"{self.name}@%h"),
                *("--without-heartbeat", "--without-gossip", "--without-mingle"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker answers a ping (so the first event does not time the worker's start-up)."""
        from revexos.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the Celery worker exited during start-up")
            if app.control.ping(destination=[f"{self.name}@{socket.gethostname()}"], timeout=0.5):
                return
        raise RuntimeError("the Celery worker did not answer a ping")

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def milestone_contracts(*, count: int, today: date) -> list[tuple[str, str, str]]:
    """``count`` contracts with one pending milestone each, their customer a distinct billing address:
    (contract number, milestone reference, billing e-mail)."""
    from decimal import Decimal

    from contracts.models import Contract, ContractVersion, Customer, IssuingEntity, Milestone, PriceLine

    entity = IssuingEntity.objects.order_by("pk").first()
    tag = uuid.uuid4().hex[:6]
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"delivery-{tag}-{i}",
                legal_name=f"Delivery {tag} {i} Ltd",
                billing_emails=[f"ap-{tag}-{i}@delivery.example"],
            )
            for i in range(count)
        ]
    )
    contracts = Contract.objects.bulk_create(
        [
            Contract(
                customer=c,
                issuing_entity=entity,
                number=f"D-{tag}-{i:04d}",
                title="Delivery bench",
                status="active",
                start_date=today.replace(day=1),
                end_date=None,
            )
            for i, c in enumerate(customers)
        ]
    )
    versions = ContractVersion.objects.bulk_create(
        [
            ContractVersion(contract=c, version=1, effective_from=c.start_date, currency="USD", payment_terms_days=30)
            for c in contracts
        ]
    )
    PriceLine.objects.bulk_create(
        [
            PriceLine(
                version=v,
                position=1,
                line_ref="M",
                kind="milestone",
                description="Go-live",
                amount=Decimal("12000.00"),
                reference=f"DLV-{c.pk}",
            )
            for c, v in zip(contracts, versions, strict=True)
        ]
    )
    Milestone.objects.bulk_create(
        [Milestone(contract=c, line_ref="M", name="Go-live", reference=f"DLV-{c.pk}") for c in contracts]
    )
    return [(c.number, f"DLV-{c.pk}", cust.billing_emails[0]) for c, cust in zip(contracts, customers, strict=True)]


def delivery_latency(
    *, host: str, api_key: str, schema: str, events: int, today: date, workers: int, interval: float
) -> Row:
    """POST a milestone-completed event per contract (one every ``interval`` s) to a real gunicorn, with a real
    Celery worker and a real SMTP server: time from the POST to the invoice e-mail (PDF attached)
    accepted by SMTP, per event; then check each invoice is issued and its PDF stored."""
    import http.client
    import logging

    from django.core.files.storage import default_storage
    from django.db import connection
    from django_tenants.utils import schema_context

    from billing.tests.smtp import SmtpSink

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
    with schema_context(schema):
        todo = milestone_contracts(count=events, today=today)
    connection.close()
    sink = SmtpSink().start()
    env = dict(
        os.environ,
        CELERY_QUEUE=f"rvx-bench-{uuid.uuid4().hex[:8]}",
        EMAIL_URL=f"smtp://127.0.0.1:{sink.port}",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore",
    )
    saved = {k: os.environ.get(k) for k in ("CELERY_QUEUE", "EMAIL_URL")}
    os.environ.update(CELERY_QUEUE=env["CELERY_QUEUE"], EMAIL_URL=env["EMAIL_URL"])  # the gunicorn's
    server = Server(workers=2, host=host)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    worker = Worker(env=env, concurrency=workers)
    posted: dict[str, float] = {}
    accepted: dict[str, float] = {}
    try:
        server.wait_ready()
        worker.wait_ready()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"Host": host, "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        seen = 0

        def collect() -> None:
            nonlocal seen
            with sink.lock:
                fresh = sink.envelopes[seen:]
                seen = len(sink.envelopes)
            now = time.perf_counter()
            for _mail_from, rcpts in fresh:
                for rcpt in rcpts:
                    accepted.setdefault(rcpt, now)

        for number, ref, email in todo:
            body = json.dumps(
                {"kind": "milestone_completed", "contract": number, "milestone_ref": ref, "external_id": ref}
            )
            posted[email] = time.perf_counter()
            conn.request("POST", "/api/v1/delivery-events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 202:
                raise RuntimeError(f"delivery event answered {response.status}: {payload[:300]!r}")
            collect()
            time.sleep(interval)
        deadline = time.monotonic() + 120
        while len(accepted) < len(todo) and time.monotonic() < deadline:
            collect()
            time.sleep(0.02)
    finally:
        worker.stop()
        server.stop()
        sink.stop()
    latencies = [accepted[email] - posted[email] for email in posted if email in accepted]
    missing = len(todo) - len(latencies)
    from billing.models import Invoice
    from billing.services.pdf import invoice_pdf_name

    with schema_context(schema):
        invoices = list(Invoice.objects.filter(contract__number__in=[n for n, _, _ in todo]))
        issued = sum(1 for i in invoices if i.status != "draft")
        stored = sum(1 for i in invoices if i.status != "draft" and default_storage.exists(invoice_pdf_name(i)))
    connection.close()
    row = Row(
        scenario=f"delivery event → invoice issued, PDF stored, e-mail accepted by SMTP ({workers}-process worker)",
        rows=len(latencies),
        seconds=sum(latencies),
        unit="events",
        p50_ms=_p(latencies, 50),
        p95_ms=_p(latencies, 95),
        p99_ms=max(latencies, default=0) * 1000,
        note=f"{len(todo)} events, one every {interval:g} s; {issued} invoices issued, {stored} PDFs stored, "
        f"{len(latencies)} e-mails accepted{f', {missing} MISSING' if missing else ''}",
    )
    row.complete = not missing and issued == len(todo) and stored == len(todo)
    return row


# ----------------------------------------------------------------------------- tenants


def provisioning(*, count: int) -> Row:
    """Sign-up as ``provision_tenant`` does it: a spare schema renamed (or the template cloned when none
    is left), domain, admin, API key. Between two sign-ups the spares are replenished, off the clock, as
    the worker does after each; one more sign-up, with no spare left, times the clone fallback."""
    from django.db import connection

    from revexos.tenancy.services.provisioning import tenant_provision
    from revexos.tenancy.services.template import tenant_spares, tenant_spares_drop, tenant_spares_replenish

    def sign_up() -> float:
        slug = f"prov-{uuid.uuid4().hex[:8]}"
        began = time.perf_counter()
        tenant_provision(
            slug=slug,
            name=f"Provisioned {slug}",
            admin_email=f"admin@{slug}.example",
            admin_password="Bench-password-2026",
            with_api_key=True,
        )
        return time.perf_counter() - began

    timings = []
    spare_taken = 0
    for _ in range(count):
        tenant_spares_replenish(keep=1)
        before = len(tenant_spares())
        timings.append(sign_up())
        spare_taken += len(tenant_spares()) < before
    tenant_spares_drop()
    fallback = sign_up()
    connection.set_schema_to_public()
    return Row(
        scenario="tenant provisioning (spare schema renamed, domain, admin user, API key)",
        rows=count,
        seconds=sum(timings),
        unit="tenants",
        p50_ms=_p(timings, 50),
        p95_ms=_p(timings, 95),
        p99_ms=max(timings) * 1000,
        note=f"{count} sign-ups one after another, {spare_taken} on a spare (replenished between them, untimed, "
        f"as the worker does); with no spare left a sign-up clones the template: {fallback:.2f} s",
    )


def _tenants_create(args) -> list[str]:
    """Worker process: small tenants (schema cloned from the template, no users), their schema names."""
    import django

    django.setup()
    from django.db import connection

    from revexos.tenancy.models import Tenant

    prefix, start, count = args
    names = []
    for n in range(start, start + count):
        slug = f"{prefix}-{n:05d}"
        tenant = Tenant(schema_name=slug.replace("-", "_"), slug=slug, name=f"Idle {n}")
        tenant.save(verbosity=0)
        names.append(tenant.schema_name)
    connection.close()
    return names


def _beat_tenants(schemas: list[str]) -> dict:
    """Worker process: the billing beat's per-tenant task (``cycle_tenant``) in each schema."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from billing.tasks import cycle_tenant

    most = 0
    idle = 0
    for schema in schemas:
        with schema_context(schema), CaptureQueriesContext(connection) as captured:
            result = cycle_tenant.run()
        idle += result == {"idle": True}
        most = max(most, len(captured.captured_queries))
    connection.close()
    return {"max_queries": most, "idle": idle}


def idle_beat(*, tenants: int, processes: int) -> tuple[Row, Row]:
    """``tenants`` small tenants made by cloning the template (in ``processes`` processes), then one
    hourly billing beat over all of them (the per-tenant task, in ``processes`` worker processes)."""
    import multiprocessing

    from django.db import connection

    connection.close()
    prefix = f"idle{uuid.uuid4().hex[:4]}"
    per = -(-tenants // processes)
    parts = [(prefix, start, min(per, tenants - start)) for start in range(0, tenants, per)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:  # one pool for both: Django is set up once per process
        began = time.perf_counter()
        schemas = [s for part in pool.map(_tenants_create, parts) for s in part]
        made = time.perf_counter() - began
        slices = [schemas[i::processes] for i in range(processes)]
        pool.map(_beat_tenants, [s[:1] for s in slices])  # first use of the task's code outside the timing
        began = time.perf_counter()
        results = pool.map(_beat_tenants, slices)
        seconds = time.perf_counter() - began
    most = max(r["max_queries"] for r in results)
    idle = sum(r["idle"] for r in results)
    beat = Row(
        scenario=f"idle billing beat over {len(schemas):,} tenants ({processes} worker processes)",
        rows=len(schemas),
        seconds=seconds,
        unit="tenants",
        queries=most,
        note=f"{idle:,} idle; at most {most} queries per idle tenant (the tenant task's own, in process)",
    )
    clone = Row(
        scenario=f"small tenants created by cloning the template ({processes} processes)",
        rows=len(schemas),
        seconds=made,
        unit="tenants",
        note="schema clones without users, for the beat scenario",
    )
    return beat, clone
