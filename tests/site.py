"""The demo workspace as every role sees it: a tenant seeded like ``make run`` and a crawl of its pages.

Pages are discovered from the URL conf: the crawl starts at the home page, follows every link and
htmx ``hx-get`` it finds (same host, at most a couple of URLs per URL pattern and role), and the
tests check that every tenant URL pattern was reached, so a page added later is covered without
editing a list. The data is the demo's own seed plus the awkward cases a workspace meets sooner or
later (an unassigned review task, a contract that starts next month, a void invoice, a held draft).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

SLUG = "tenant-demo"
URLCONF = "revexos.urls"
# Mounted sub-applications with their own access control and tests (the API, Django's admin),
# and links that end the session.
SKIP_PREFIXES = ("/admin/", "/api/", "/static/", "/media/", "/accounts/logout/")
# At most this many URLs per URL pattern and role (plain pages, with a query string, htmx
# partials): a few instances of a detail page, since one may lack what another links to (a
# connection with inbox events after one without). Past the first, another instance is visited
# only while the instances so far keep leading to patterns not seen before, or the second.
PER_PAGE_PATTERN = 4
PER_QUERY_PATTERN = 1
PER_HTMX_PATTERN = 6
SEARCH_SAMPLE = "Ltd"


@dataclass
class Visit:
    url: str
    view: str  # namespaced URL name
    status: int
    content_type: str
    htmx: bool = False
    found_on: str = ""


@dataclass
class Crawl:
    role: str
    visits: list[Visit] = field(default_factory=list)

    def pages(self) -> dict[str, Visit]:
        """The first full HTML page answered 200 per URL pattern: what a browser should render."""
        first: dict[str, Visit] = {}
        for visit in self.visits:
            if visit.status == 200 and visit.content_type.startswith("text/html") and not visit.htmx:
                first.setdefault(visit.view, visit)
        return first


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append((attrs["href"], False))
        if tag == "img" and (attrs.get("src") or "").startswith("/"):
            self.links.append((attrs["src"], False))
        if attrs.get("hx-get"):
            self.links.append((attrs["hx-get"], True))
        if tag == "form" and attrs.get("role") == "search" and attrs.get("action"):
            # The shell's search box: search for what most demo customers are called.
            self.links.append((f"{attrs['action']}?q={SEARCH_SAMPLE}", False))


def _local(href: str) -> str | None:
    parts = urlsplit(href)
    if parts.scheme and parts.scheme not in {"http", "https"}:
        return None  # mailto:, javascript:
    if parts.netloc and not parts.netloc.split(":")[0].endswith("localhost"):
        return None
    path = parts.path
    if not path.startswith("/") or path.startswith(SKIP_PREFIXES):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def view_name(path: str) -> str | None:
    try:
        match = resolve(urlsplit(path).path, urlconf=URLCONF)
    except Resolver404:
        return None
    return match.view_name


def crawl(client, role: str, *, start: str = "/") -> Crawl:
    result = Crawl(role=role)
    client.raise_request_exception = False  # record a 500 and go on, rather than stop at the first
    seen: set[str] = set()
    per_pattern: dict[tuple[str, str], int] = {}
    exhausted: set[tuple[str, str]] = set()
    misses: dict[tuple[str, str], int] = {}
    known: set[str] = set()
    queue: list[tuple[str, bool, str]] = [(start, False, "")]
    while queue:
        url, htmx, found_on = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        name = view_name(url) or f"unresolved:{urlsplit(url).path}"
        known.add(name)
        bucket = "htmx" if htmx else ("query" if "?" in url else "page")
        key = (name, bucket)
        limit = {"htmx": PER_HTMX_PATTERN, "query": PER_QUERY_PATTERN, "page": PER_PAGE_PATTERN}[bucket]
        if (per_pattern.get(key, 0) >= limit or key in exhausted) and url != start:
            continue
        per_pattern[key] = per_pattern.get(key, 0) + 1
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        response = client.get(url, **headers)
        content_type = response.get("Content-Type", "")
        result.visits.append(Visit(url, name, response.status_code, content_type, htmx, found_on))
        if response.status_code != 200 or not content_type.startswith("text/html"):
            continue
        parser = _Links()
        parser.feed(response.content.decode("utf-8", "replace"))
        fruitful = False
        for href, is_htmx in parser.links:
            local = _local(href)
            if local and local not in seen:
                queue.append((local, is_htmx, url))
                linked = view_name(local)
                if linked and linked not in known:
                    known.add(linked)
                    fruitful = True
        if not fruitful:
            misses[key] = misses.get(key, 0) + 1
            if misses[key] >= 2:
                exhausted.add(key)
    return result


def _logo(schema: str) -> None:
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    from revexos.tenancy.models import Tenant

    buffer = io.BytesIO()
    Image.new("RGB", (320, 80), (47, 91, 211)).save(buffer, format="PNG")
    tenant = Tenant.objects.get(schema_name=schema)
    tenant.invoice_logo.save("logo.png", ContentFile(buffer.getvalue()), save=True)


def seed_demo_workspace(schema: str) -> dict:
    """The demo's seed (as ``make run`` runs it) plus the awkward cases; returns their ids."""
    from django_tenants.utils import schema_context

    from billing.cycle import cycle_run
    from billing.models import BillingReviewTask, Invoice, InvoiceStatus, ReviewTaskKind
    from billing.services.reviews import review_task_raise
    from billing.tests.builders import contract_with
    from revexos.dates import tenant_today
    from revexos.tenancy.management.commands.demo_setup import demo_workspace_seed

    with schema_context(schema):
        _logo(schema)
        demo_workspace_seed()  # exactly what `make run` seeds
        today = tenant_today()
        future = contract_with(
            {"kind": "recurring", "description": "Retainer", "amount": "2500.00", "frequency": "monthly"},
            start=today + timedelta(days=41),
            end=today + timedelta(days=41 + 364),
            number=f"FUT-{uuid.uuid4().hex[:4].upper()}",
        )
        cycle_run(as_of=today)
        review_task_raise(
            kind=ReviewTaskKind.SCOPE_CHANGE,
            dedupe_key="pages:unassigned",
            title="Scope change nobody has picked up yet",
            detail="Raised without an assignee.",
            contract_id=future.pk,
        )
        BillingReviewTask.objects.filter(dedupe_key="pages:unassigned").update(assignee=None)
        assert BillingReviewTask.objects.filter(assignee__isnull=True).exists()
        assert Invoice.objects.filter(status=InvoiceStatus.VOID).exists(), "the demo keeps a void invoice"
        assert Invoice.objects.filter(status=InvoiceStatus.DRAFT).exclude(hold_reasons=[]).exists()
        return {"future_contract": future.pk}
