"""The OpenAPI document is valid: no duplicate keys, valid OpenAPI 3, and every error answer documented."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def _refuse_duplicates(pairs):
    keys = [k for k, _ in pairs]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys in the OpenAPI document: {sorted(duplicates)}"
    return dict(pairs)


@pytest.fixture
def document(tenant_a) -> dict:
    response = Client(HTTP_HOST=tenant_a.host).get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content, object_pairs_hook=_refuse_duplicates)


def test_the_document_has_no_duplicate_keys_and_is_valid_openapi(document):
    validate(document)


def test_the_invoice_pdf_operation_documents_one_200_as_pdf(document):
    responses = document["paths"]["/api/v1/invoices/{invoice_id}/pdf"]["get"]["responses"]
    assert list(responses).count("200") == 1
    assert "application/pdf" in responses["200"]["content"]


def test_every_operation_documents_its_error_answers(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            expected = {"400", "422"}
            if operation.get("security"):
                expected.add("401")
            if "{" in path:
                expected.add("404")
            if method in {"post", "put", "patch"}:
                expected |= {"413", "415"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


@pytest.mark.browser
def test_the_api_reference_renders_in_a_browser(page, tenant_a, live_server_url, shot):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(tenant_a.url(live_server_url, "/api/v1/docs"))
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("Failed to load API definition").count() == 0
    shot("docs")
    assert not errors, errors
