"""The contracts UI: who may open what, htmx partials, the editor, one validation path with the API."""

from __future__ import annotations

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from contracts.models import Contract, ContractVersion, Customer, PriceLine
from contracts.services.contracts import contract_create
from contracts.services.customers import customer_create
from contracts.tests.conftest import contract_form_post, error_fields
from contracts.tests.factories import contract_payload, customer_payload
from contracts.tests.test_api import CONTRACT_RULES
from revexos.accounts.models import Role
from revexos.accounts.roles import CAPABILITIES
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(in_a):
    with in_a():
        customer = customer_create(data=customer_payload())
        contract = contract_create(data=contract_payload())
    connection.set_schema_to_public()
    return {"customer": customer.pk, "contract": contract.pk}


PAGES = [
    ("/customers/", "customers.view"),
    ("/customers/{customer}/", "customers.view"),
    ("/customers/new/", "customers.manage"),
    ("/customers/{customer}/edit/", "customers.manage"),
    ("/customers/import/", "customers.manage"),
    ("/customers/export.csv", "customers.view"),
    ("/contracts/", "contracts.view"),
    ("/contracts/{contract}/", "contracts.view"),
    ("/contracts/new/", "contracts.manage"),
    ("/contracts/{contract}/edit/", "contracts.manage"),
    ("/contracts/{contract}/amend/", "contracts.manage"),
    ("/contracts/import/", "contracts.manage"),
    ("/contracts/export.csv", "contracts.view"),
    ("/contracts/editor/price-line/?kind=usage", "contracts.manage"),
    ("/settings/issuing-entities/", "issuing_entities.manage"),
    ("/settings/issuing-entities/new/", "issuing_entities.manage"),
]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_opens_exactly_the_pages_its_capabilities_allow(tenant_a, seeded, role):
    client = client_for(tenant_a, email=tenant_a.users[role])
    for path, capability in PAGES:
        response = client.get(path.format(**seeded))
        expected = 200 if role in CAPABILITIES[capability] else 403
        assert response.status_code == expected, f"{role} {path}: {response.status_code}"


def test_anonymous_users_are_sent_to_sign_in(tenant_a, seeded):
    client = client_for(tenant_a)
    for path, _ in PAGES:
        response = client.get(path.format(**seeded))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path


def test_a_viewer_cannot_post_changes(tenant_a, seeded, in_a):
    viewer = client_for(tenant_a, email=tenant_a.users["viewer"])
    assert viewer.post("/customers/new/", {"external_id": "x", "legal_name": "X"}).status_code == 403
    assert viewer.post(f"/contracts/{seeded['contract']}/activate/").status_code == 403
    with in_a():
        assert Customer.objects.count() == 1


def test_navigation_lists_customers_contracts_and_issuing_entities_for_admins(tenant_a):
    admin = client_for(tenant_a, email=tenant_a.users["admin"]).get("/").content.decode()
    manager = client_for(tenant_a, email=tenant_a.users["account_manager"]).get("/").content.decode()
    assert "/customers/" in admin and "/contracts/" in admin and "/settings/issuing-entities/" in admin
    assert "/customers/" in manager and "/settings/issuing-entities/" not in manager


def test_lists_answer_htmx_with_the_table_partial_and_filter(admin_client, seeded):
    full = admin_client.get("/contracts/")
    assert b"<html" in full.content and b'id="contract-table"' in full.content
    partial = admin_client.get("/contracts/?q=C-1001", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and partial.content.lstrip().startswith(b'<div id="contract-table"')
    assert b"C-1001" in partial.content
    assert b"C-1001" not in admin_client.get("/contracts/?q=nothing-like-it", HTTP_HX_REQUEST="true").content
    customers = admin_client.get("/customers/?q=acme", HTTP_HX_REQUEST="true")
    assert b"<html" not in customers.content and b"Acme Ltd" in customers.content


def test_list_query_counts_do_not_grow_with_rows(admin_client, in_a):
    def queries(path):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(path).status_code == 200
        return len(ctx)

    with in_a():
        customer_create(data=customer_payload())
        for n in range(2):
            contract_create(data=contract_payload(number=f"C-{n}"))
    queries("/contracts/"), queries("/customers/")  # warm-up: session and per-process caches
    few = queries("/contracts/"), queries("/customers/")
    with in_a():
        for n in range(2, 20):
            customer_create(data=customer_payload(external_id=f"c{n}", legal_name=f"C{n}"))
            contract_create(data=contract_payload(number=f"C-{n}"))
    many = queries("/contracts/"), queries("/customers/")
    assert many[0] <= few[0] and many[1] <= few[1], (few, many)


def test_the_editor_adds_rows_per_kind_and_rerenders_a_row_when_its_kind_changes(admin_client):
    row = admin_client.get(
        "/contracts/editor/price-line/?kind=time_and_materials", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-kind="time_and_materials"' in row and "Hourly rate" in row and "<html" not in row
    token = "abc123"
    changed = admin_client.get(
        "/contracts/editor/price-line/",
        {
            "token": token,
            f"pl-{token}-kind": "usage",
            f"pl-{token}-description": "API calls",
            f"pl-{token}-charge_model": "graduated",
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-kind="usage"' in changed and 'value="API calls"' in changed and "Up to (inclusive)" in changed
    package = admin_client.get(
        "/contracts/editor/price-line/",
        {"token": token, f"pl-{token}-kind": "usage", f"pl-{token}-charge_model": "package"},
    ).content.decode()
    assert "Package size" in package and "Up to (inclusive)" not in package
    assert "up_to" in admin_client.get("/contracts/editor/tier/?line=abc123&charge_model=graduated").content.decode()
    assert "hourly_rate" in admin_client.get("/contracts/editor/rate/?line=abc123").content.decode()


def test_an_admin_creates_a_contract_with_every_kind_of_line_through_the_form(admin_client, in_a):
    with in_a():
        customer = customer_create(data=customer_payload())
    response = admin_client.post("/contracts/new/", contract_form_post(contract_payload(), customer_pk=customer.pk))
    assert response.status_code == 302, error_fields(response)
    with in_a():
        contract = Contract.objects.get(number="C-1001")
        kinds = list(contract.versions.get().price_lines.values_list("kind", flat=True))
    assert kinds == ["recurring", "milestone", "time_and_materials", "fixed_fee", "usage"]
    api = admin_client.get(f"/contracts/{contract.pk}/")
    assert b"Terms in force" in api.content and b"Phase 1 go-live" in api.content


FORM_RULES = [r for r in CONTRACT_RULES if r[0] != "field of another charge model"]  # the form never sends such a field


@pytest.mark.parametrize("mutate, field", [pytest.param(m, f, id=d) for d, m, f in FORM_RULES])
def test_every_contract_rule_shows_on_the_form_next_to_its_field_and_writes_nothing(admin_client, in_a, mutate, field):
    with in_a():
        customer_create(data=customer_payload())
    payload = copy.deepcopy(contract_payload())
    mutate(payload)
    response = admin_client.post("/contracts/new/", contract_form_post(payload))
    assert response.status_code == 400
    errors = error_fields(response)
    assert field in errors, errors
    assert escape(errors[field][0]) in response.content.decode(), "the message is not shown on the page"
    with in_a():
        assert (Contract.objects.count(), ContractVersion.objects.count(), PriceLine.objects.count()) == (0, 0, 0)


def test_customer_form_shows_service_errors_on_its_fields(admin_client, in_a):
    response = admin_client.post(
        "/customers/new/",
        {
            "external_id": "has space",
            "legal_name": "",
            "country": "England",
            "billing_emails": "nope",
            "currency": "USD",
        },
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"external_id", "legal_name", "country", "billing_emails"}
    with in_a():
        assert not Customer.objects.exists()
    ok = admin_client.post(
        "/customers/new/",
        {
            "external_id": "acme-ltd",
            "legal_name": "Acme Ltd",
            "currency": "USD",
            "billing_emails": "ap@acme.example\nfinance@acme.example",
            "country": "gb",
            "is_active": "on",
        },
    )
    assert ok.status_code == 302
    with in_a():
        assert Customer.objects.get().billing_emails == ["ap@acme.example", "finance@acme.example"]


def test_issuing_entities_are_managed_in_settings(admin_client, in_a):
    response = admin_client.post(
        "/settings/issuing-entities/new/",
        {"legal_name": "Northwind Ltd", "invoice_prefix": "NW-", "currency": "GBP", "country": "GB", "is_active": "on"},
    )
    assert response.status_code == 302
    duplicate = admin_client.post(
        "/settings/issuing-entities/new/", {"legal_name": "Other", "invoice_prefix": "nw-", "currency": "GBP"}
    )
    assert duplicate.status_code == 400 and "invoice_prefix" in duplicate.context["form"].errors
    assert b"Northwind Ltd" in admin_client.get("/settings/issuing-entities/").content


def test_amending_through_the_form_shows_the_diff_before_saving(admin_client, seeded, in_a):
    payload = copy.deepcopy(contract_payload())
    payload["price_lines"][0]["amount"] = "3500.00"
    with in_a():
        refs = list(ContractVersion.objects.get().price_lines.values_list("line_ref", flat=True))
    for line, ref in zip(payload["price_lines"], refs, strict=False):
        line["line_ref"] = ref
    data = contract_form_post(payload)
    data.update(effective_from="2026-03-15", reason="Scope extended", action="preview")
    preview = admin_client.post(f"/contracts/{seeded['contract']}/amend/", data, HTTP_HX_REQUEST="true")
    html = preview.content.decode()
    assert preview.status_code == 200 and "<html" not in html
    assert (
        "Review: version 2 from 15 Mar 2026" in html
        and "3100.00" in html
        and "3500.00" in html
        and "Save amendment" in html
    )
    with in_a():
        assert ContractVersion.objects.count() == 1
    data["action"] = "save"
    saved = admin_client.post(f"/contracts/{seeded['contract']}/amend/", data, HTTP_HX_REQUEST="true")
    assert saved.status_code == 204 and saved["HX-Redirect"] == f"/contracts/{seeded['contract']}/"
    with in_a():
        version = ContractVersion.objects.get(version=2)
        assert version.reason == "Scope extended" and version.price_lines.get(line_ref="L1").amount == 3500
    detail = admin_client.get(f"/contracts/{seeded['contract']}/").content.decode()
    assert "Amendment v2 from 15 Mar 2026" in detail and "3500.00" in detail


def test_an_invalid_amendment_is_shown_with_its_errors(admin_client, seeded, in_a):
    data = contract_form_post(contract_payload())
    data.update(effective_from="2020-01-01", action="preview")
    response = admin_client.post(f"/contracts/{seeded['contract']}/amend/", data)
    assert response.status_code == 400 and "effective_from" in response.context["form"].errors


def test_editing_a_contract_in_force_offers_an_amendment_instead_of_its_terms(admin_client, seeded):
    page = admin_client.get(f"/contracts/{seeded['contract']}/edit/").content.decode()
    assert "Amend terms" in page and 'name="pl"' not in page


def test_the_contract_page_shows_versions_milestones_value_and_history(admin_client, seeded):
    page = admin_client.get(f"/contracts/{seeded['contract']}/").content.decode()
    for text in ("Contract value", "Versions", "Milestones", "PROJ-12", "History", "Contract created", "L5"):
        assert text in page, text
    terms = admin_client.get(
        f"/contracts/{seeded['contract']}/?version=1&partial=terms", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert terms.lstrip().startswith('<section class="card" id="version-terms"')


def test_csv_import_pages_preview_then_commit(admin_client, in_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = "external_id,legal_name,currency\nacme-ltd,Acme Ltd,USD\nglobex,Globex,EUR\n"
    preview = admin_client.post(
        "/customers/import/", {"file": SimpleUploadedFile("c.csv", good.encode()), "action": "preview"}
    )
    assert preview.status_code == 200 and b"Ready to import" in preview.content
    payload = preview.context["payload"]
    done = admin_client.post("/customers/import/", {"payload": payload, "action": "commit"})
    assert done.status_code == 302
    with in_a():
        assert Customer.objects.count() == 2
    bad = "external_id,legal_name,currency\nx1,X,USD\nx2,,USD\n"
    response = admin_client.post(
        "/customers/import/", {"file": SimpleUploadedFile("c.csv", bad.encode()), "action": "preview"}
    )
    assert response.status_code == 400 and b"legal_name: This field is required." in response.content
    assert response.context["preview"].bad_rows[0].line == 3


def test_activating_a_draft_from_its_page(admin_client, in_a):
    with in_a():
        customer_create(data=customer_payload())
        draft = contract_create(data=contract_payload(status="draft"))
    assert b"Activate" in admin_client.get(f"/contracts/{draft.pk}/").content
    admin_client.post(f"/contracts/{draft.pk}/activate/")
    with in_a():
        assert Contract.objects.get(pk=draft.pk).status == "active"


def test_django_admin_shows_versions_in_force_read_only(admin_client, seeded, in_a):
    with in_a():
        version = ContractVersion.objects.get()
    page = admin_client.get(f"/admin/contracts/contractversion/{version.pk}/change/")
    assert page.status_code == 200
    assert b'name="payment_terms_days"' not in page.content  # rendered read-only
    assert admin_client.get("/admin/contracts/customer/").status_code == 200


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"start_date": "9999-01-01", "end_date": None, "auto_renew": False}, "start_date"),
        ({"start_date": "0001-01-01"}, "start_date"),
        ({"payment_terms_days": "٣٠"}, "payment_terms_days"),
    ],
)
def test_the_contract_form_bounds_dates_and_refuses_foreign_digits(admin_client, in_a, changes, field):
    with in_a():
        customer = customer_create(data=customer_payload())
    payload = {k: v for k, v in contract_payload(**changes).items() if v is not None}
    response = admin_client.post("/contracts/new/", contract_form_post(payload, customer_pk=customer.pk))
    assert response.status_code in (200, 400) and field in error_fields(response), error_fields(response)
    with in_a():
        assert not Contract.objects.filter(number="C-1001").exists()
