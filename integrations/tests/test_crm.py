"""CRMs → draft contracts (HubSpot through hubspot-api-client, Salesforce through simple-salesforce),
and Asana completions fetched from its API — each against a local stand-in of the vendor's API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import BillingReviewTask, DeliveryEvent
from contracts.models import Contract, Customer
from integrations.models import CrmDeal, InboxEvent
from integrations.services.connections import connection_create
from integrations.tests.payloads import dumps, hubspot_headers, hubspot_won
from integrations.tests.standins import asana_stand_in, hubspot_stand_in, salesforce_stand_in

SECRET = "hubspot-app-secret-0123456789"

LINE_ITEMS = {
    "101": {
        "name": "Platform subscription",
        "quantity": "1",
        "price": "2500.00",
        "amount": "2500.00",
        "recurringbillingfrequency": "monthly",
        "hs_recurring_billing_period": "P12M",
    },
    "102": {
        "name": "Premium support",
        "quantity": "2",
        "price": "300.00",
        "amount": "600.00",
        "recurringbillingfrequency": "quarterly",
    },
    "103": {"name": "Onboarding workshop", "quantity": "1", "price": "4000.00", "amount": "4000.00"},
}
COMPANIES = {
    "7001": {"name": "Initech LLC", "domain": "initech.example", "city": "Austin", "country": "US", "zip": "78701"}
}


def deal(**changes):
    properties = {
        "dealname": "Initech platform rollout",
        "amount": "38800.00",
        "closedate": "2026-06-01T00:00:00Z",
        "dealstage": "closedwon",
        "pipeline": "default",
        "deal_currency_code": "USD",
        **changes,
    }
    return {"properties": properties, "line_items": ["101", "102", "103"], "company": "7001"}


@pytest.fixture
def hubspot_api():
    deals = {"5001": deal()}
    with hubspot_stand_in(deals=deals, line_items=LINE_ITEMS, companies=COMPANIES) as server:
        server.deals = deals
        yield server


@pytest.fixture
def hubspot(in_tenant_a, hubspot_api):
    connection, _ = connection_create(
        data={"source": "hubspot", "secret": SECRET, "api_token": "pat-na1-test", "api_base": hubspot_api.url}
    )
    return connection


def send_won(client, tenant, capture, deal_id="5001", event_id=None):
    body = dumps(hubspot_won(deal_id, event_id=event_id))
    uri = f"http://{tenant.host}/webhooks/hubspot/"
    with capture(execute=True):
        return client.post(
            "/webhooks/hubspot/", body, content_type="application/json", **hubspot_headers(body, SECRET, uri=uri)
        )


def test_a_won_deal_with_two_recurring_items_and_a_one_off_makes_one_draft_with_three_lines(
    webhook_client, in_tenant_a, hubspot, hubspot_api, worker, django_capture_on_commit_callbacks
):
    assert send_won(webhook_client, in_tenant_a, django_capture_on_commit_callbacks).status_code == 200
    worker.run_pass()
    (contract,) = Contract.objects.filter(crm_deals__deal_id="5001")
    assert contract.status == "draft" and contract.number == "HS-5001" and contract.title == "Initech platform rollout"
    assert str(contract.start_date) == "2026-06-01" and str(contract.end_date) == "2027-05-31"
    assert contract.customer.legal_name == "Initech LLC" and contract.customer.crm_id == "hubspot:7001"
    lines = list(contract.versions.get().price_lines.order_by("position"))
    assert [(pl.kind, pl.description, pl.amount, pl.frequency) for pl in lines] == [
        ("recurring", "Platform subscription", Decimal("2500.00"), "monthly"),
        ("recurring", "Premium support × 2", Decimal("600.00"), "quarterly"),
        ("fixed_fee", "Onboarding workshop", Decimal("4000.00"), ""),
    ]
    assert "HubSpot deal 5001" in contract.history.earliest().history_change_reason
    # The authorisation and the configured API base were used.
    assert any(h.get("Authorization") == "Bearer pat-na1-test" for _, _, h in hubspot_api.requests)

    # Delivered again (a retry with a new event id, or won twice): still one draft.
    send_won(webhook_client, in_tenant_a, django_capture_on_commit_callbacks)
    worker.run_pass()
    assert CrmDeal.objects.count() == 1 and Contract.objects.filter(crm_deals__deal_id="5001").count() == 1
    assert Customer.objects.filter(crm_id="hubspot:7001").count() == 1


def test_a_deal_changed_after_activation_raises_a_review_and_leaves_the_contract_alone(
    webhook_client, in_tenant_a, hubspot, hubspot_api, worker, django_capture_on_commit_callbacks
):
    from contracts.services.contracts import contract_activate

    send_won(webhook_client, in_tenant_a, django_capture_on_commit_callbacks)
    worker.run_pass()
    contract = Contract.objects.get(number="HS-5001")
    contract_activate(contract=contract)
    LINE_ITEMS_CHANGED = dict(LINE_ITEMS, **{"101": dict(LINE_ITEMS["101"], price="2750.00")})
    hubspot_api.routes.clear()
    with hubspot_stand_in(deals=hubspot_api.deals, line_items=LINE_ITEMS_CHANGED, companies=COMPANIES) as changed:
        hubspot.settings["api_base"] = changed.url
        hubspot.save()
        send_won(webhook_client, in_tenant_a, django_capture_on_commit_callbacks)
        worker.run_pass()
    (task,) = BillingReviewTask.objects.filter(contract=contract, kind="scope_change")
    assert task.title == "HubSpot deal 5001 changed after contract HS-5001 was signed"
    assert "Removed line: Platform subscription: 2500.00 monthly" in task.detail
    assert "Added line: Platform subscription: 2750.00 monthly" in task.detail
    assert contract.versions.get().price_lines.get(description="Platform subscription").amount == Decimal("2500.00")


def test_a_stage_that_is_not_won_is_stored_and_ignored(
    webhook_client, in_tenant_a, hubspot, worker, django_capture_on_commit_callbacks
):
    body = dumps(hubspot_won("5001", stage="appointmentscheduled"))
    uri = f"http://{in_tenant_a.host}/webhooks/hubspot/"
    with django_capture_on_commit_callbacks(execute=True):
        webhook_client.post(
            "/webhooks/hubspot/", body, content_type="application/json", **hubspot_headers(body, SECRET, uri=uri)
        )
    worker.run_pass()
    assert InboxEvent.objects.get().status == "ignored" and not Contract.objects.filter(number="HS-5001").exists()


def test_a_deal_the_crm_cannot_find_fails_visibly_and_nothing_is_half_made(
    webhook_client, in_tenant_a, hubspot, worker, django_capture_on_commit_callbacks
):
    send_won(webhook_client, in_tenant_a, django_capture_on_commit_callbacks, deal_id="404404")
    worker.run_pass()
    event = InboxEvent.objects.get()
    assert event.status == "failed" and "HubSpot answered 404 for deal 404404" in event.error
    assert not CrmDeal.objects.exists()


OUTBOUND = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5e000000AbCdAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/00D5e0000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5e0000000001</PartnerUrl>
   <Notification>
    <Id>04l5e00000AbCdEAAV</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0065e00000XyZ12AAB</sf:Id>
     <sf:AccountId>0015e00000AbC34AAF</sf:AccountId>
     <sf:IsWon>true</sf:IsWon>
     <sf:Name>Umbrella analytics</sf:Name>
     <sf:StageName>Closed Won</sf:StageName>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""
ORG = "00D5e0000000001EAA"


@pytest.fixture
def salesforce_api():
    with salesforce_stand_in(
        opportunities={
            "0065e00000XyZ12AAB": {
                "Name": "Umbrella analytics",
                "AccountId": "0015e00000AbC34AAF",
                "CloseDate": "2026-07-01",
                "StageName": "Closed Won",
                "IsWon": True,
                "CurrencyIsoCode": "EUR",
            }
        },
        line_items={
            "0065e00000XyZ12AAB": [
                {
                    "Id": "00k5e000001",
                    "Name": "Umbrella analytics Analytics seat",
                    "Quantity": 10.0,
                    "UnitPrice": 45.0,
                    "TotalPrice": 450.0,
                    "Product2": {"attributes": {"type": "Product2"}, "Name": "Analytics seat"},
                    "Billing_Frequency__c": "Monthly",
                },
                {
                    "Id": "00k5e000002",
                    "Name": "Umbrella analytics Setup",
                    "Quantity": 1.0,
                    "UnitPrice": 1500.0,
                    "TotalPrice": 1500.0,
                    "Product2": {"attributes": {"type": "Product2"}, "Name": "Setup"},
                    "Billing_Frequency__c": None,
                },
            ]
        },
        accounts={
            "0015e00000AbC34AAF": {"Name": "Umbrella Corporation", "BillingCountryCode": "DE", "BillingCity": "Berlin"}
        },
    ) as server:
        yield server


def test_a_salesforce_won_opportunity_is_acked_and_becomes_one_draft(
    webhook_client, in_tenant_a, salesforce_api, worker, django_capture_on_commit_callbacks
):
    connection_create(
        data={
            "source": "salesforce",
            "organization_id": ORG[:15],
            "api_base": salesforce_api.url,
            "api_token": "00D!session",
        }
    )
    body = OUTBOUND.format(org=ORG).encode()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = webhook_client.post(
                "/webhooks/salesforce/", body, content_type="text/xml; charset=utf-8", HTTP_SOAPACTION='""'
            )
        assert response.status_code == 200 and b"<Ack>true</Ack>" in response.content
    worker.run_pass()
    (contract,) = Contract.objects.filter(crm_deals__deal_id="0065e00000XyZ12AAB")
    assert (
        contract.status == "draft"
        and contract.customer.legal_name == "Umbrella Corporation"
        and contract.customer.country == "DE"
    )
    lines = list(contract.versions.get().price_lines.order_by("position"))
    assert [(pl.kind, pl.amount, pl.frequency) for pl in lines] == [
        ("recurring", Decimal("450.00"), "monthly"),
        ("fixed_fee", Decimal("1500.00"), ""),
    ]
    assert contract.versions.get().currency == "EUR"


def test_a_salesforce_message_from_another_organization_is_refused(webhook_client, in_tenant_a):
    connection_create(
        data={
            "source": "salesforce",
            "organization_id": ORG,
            "api_base": "https://acme.my.salesforce.com",
            "api_token": "x",
        }
    )
    body = OUTBOUND.format(org="00D000000000999").encode()
    response = webhook_client.post("/webhooks/salesforce/", body, content_type="text/xml")
    assert response.status_code == 401 and InboxEvent.objects.get().status == "rejected"
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert webhook_client.post("/webhooks/salesforce/", bomb, content_type="text/xml").status_code == 400


def test_an_asana_task_completed_is_fetched_and_delivers_its_milestone(
    webhook_client, in_tenant_a, worker, django_capture_on_commit_callbacks
):
    import json

    from integrations.signatures import hmac_sha256_hex
    from integrations.tests.test_jira_flow import milestone_contract

    contract = milestone_contract("1209876543210")
    with asana_stand_in(
        tasks={
            "1209876543210": {
                "name": "Go-live",
                "completed": True,
                "completed_at": "2026-06-14T10:00:00.000Z",
                "projects": [{"gid": "1200001", "resource_type": "project", "name": "Rollout"}],
            }
        }
    ) as server:
        connection, _ = connection_create(
            data={"source": "asana", "api_token": "2/123/456:abc", "api_base": server.url}
        )
        connection.secret = "asana-hook-secret-123456"
        connection.save()
        body = json.dumps(
            {
                "events": [
                    {
                        "user": {"gid": "1", "resource_type": "user"},
                        "created_at": "2026-06-14T10:00:00.000Z",
                        "action": "changed",
                        "resource": {
                            "gid": "1209876543210",
                            "resource_type": "task",
                            "resource_subtype": "default_task",
                        },
                        "parent": None,
                        "change": {"field": "completed", "action": "changed"},
                    }
                ]
            }
        ).encode()
        with django_capture_on_commit_callbacks(execute=True):
            response = webhook_client.post(
                "/webhooks/asana/",
                body,
                content_type="application/json",
                HTTP_X_HOOK_SIGNATURE=hmac_sha256_hex(connection.secret, body),
            )
        assert response.status_code == 200
        worker.run_pass()
    assert InboxEvent.objects.get(connection=connection).status == "processed"
    assert DeliveryEvent.objects.get(contract=contract).kind == "milestone_completed"
