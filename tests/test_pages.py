"""Every page of every role on demo-like data: no server error, no broken link, nothing left out.

The crawl (tests/site.py) follows each role's links from its home page over a workspace seeded
like the demo, with an unassigned review task, a void invoice, a held draft and a contract that
starts next month. A URL pattern that no role reaches must answer 405 to GET (an action behind a
form) or be named below with the reason.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from revexos.accounts.models import Role
from tests.helpers import client_for
from tests.site import SKIP_PREFIXES, view_name
from tests.test_roles import PUBLIC_VIEWS, _tenant_views

# Pages no link leads to, by design (with why).
NOT_LINKED = {
    "accounts:password_reset_confirm": "reached from the reset e-mail",
    "accounts:password_reset_done": "shown after asking for a reset",
    "accounts:login": "the crawl starts signed in",
    "accounts:logout": "ends the session",
    "integrations:export_download": "linked from the exports list once an export exists (the demo has none)",
    "webhooks:endpoint_detail": "linked from the webhooks list once an endpoint exists (the demo has none)",
}


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_page_a_role_can_reach_answers_without_a_server_error(demo_crawls, role):
    crawl = demo_crawls[role]
    assert len(crawl.pages()) >= 10, f"{role} reached only {sorted(crawl.pages())}"
    errors = [f"{v.status} {v.url} (linked from {v.found_on})" for v in crawl.visits if v.status >= 500]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_no_page_links_a_role_to_a_missing_or_forbidden_page(demo_crawls, role):
    broken = [
        f"{v.status} {v.url} (linked from {v.found_on})"
        for v in demo_crawls[role].visits
        if v.status in (403, 404) or v.view.startswith("unresolved:")
    ]
    assert not broken, "\n".join(broken)


def test_the_crawl_reaches_every_page_of_the_url_conf(demo_crawls, tenant_demo, committed_db):
    reached = {visit.view for crawl in demo_crawls.values() for visit in crawl.visits}
    admin = client_for(tenant_demo, email=tenant_demo.users[Role.ADMIN])
    missing = []
    for name, route, _callback in _tenant_views():
        if name in reached or name in NOT_LINKED or name in PUBLIC_VIEWS or ("/" + route).startswith(SKIP_PREFIXES):
            continue
        # Not linked from any page the crawl visited.
        # A sample value per parameter: "x" for text converters, "1" for numbers and ids.
        url = "/" + re.sub(
            r"<(?:(\w+):)?\w+>", lambda m: "x" if (m.group(1) or "str") in {"str", "slug", "path"} else "1", route
        )
        status = admin.get(url).status_code
        if status == 405:  # an action behind a form
            continue
        if "<" not in route and status < 500:  # no parameters: reached directly (an htmx row template)
            continue
        missing.append(f"{name} ({route})")
    assert not missing, "pages no role reaches by a link (link them, or name them in NOT_LINKED):\n" + "\n".join(
        missing
    )


def test_an_unassigned_review_task_lists_for_every_role(tenant_demo, committed_db):
    for role in Role:
        client = client_for(tenant_demo, email=tenant_demo.users[role.value])
        response = client.get(reverse("billing:review_task_list", urlconf="revexos.urls"))
        assert response.status_code == 200, role
        assert "Scope change nobody has picked up yet" in response.content.decode(), role


def test_resolve_knows_the_crawled_urls():
    assert view_name("/billing/invoices/") == "billing:invoice_list"


def test_a_contract_that_starts_next_month_reads_signed_not_active(tenant_demo, committed_db):
    client = client_for(tenant_demo, email=tenant_demo.users[Role.VIEWER])
    pk = tenant_demo.seeded["future_contract"]
    for url in (f"/contracts/{pk}/", "/contracts/?q=FUT-"):
        page = client.get(url).content.decode()
        assert "Signed, starts" in page, url


def test_the_favicon_is_served(tenant_demo, committed_db):
    response = client_for(tenant_demo).get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
