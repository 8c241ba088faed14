"""The contract page's "Mark delivered" button: shown to roles that may deliver, and it delivers once."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from contracts.models import Milestone
from contracts.tests.factories import ContractFactory, MilestoneFactory, PriceLineFactory
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def milestone(tenant_a):
    with schema_context(tenant_a.schema):
        contract = ContractFactory()
        line = PriceLineFactory(version=contract.versions.get(), milestone=True)
        return MilestoneFactory(
            contract=contract, line_ref=line.line_ref, reference=line.reference, name=line.description
        )


def test_finance_sees_the_button_and_marks_the_milestone_delivered_once(tenant_a, milestone):
    client = client_for(tenant_a, email=tenant_a.users["finance"])
    page = client.get(f"/contracts/{milestone.contract_id}/").content.decode()
    assert "Mark delivered" in page
    url = f"/billing/milestones/{milestone.pk}/deliver/"
    assert client.post(url, {"next": f"/contracts/{milestone.contract_id}/"}).status_code == 302
    assert client.post(url).status_code == 302  # a second click changes nothing
    with schema_context(tenant_a.schema):
        delivered = Milestone.objects.get(pk=milestone.pk)
        assert delivered.status in {"delivered", "invoiced"} and delivered.delivered_source == "ui"
    assert "Mark delivered" not in client.get(f"/contracts/{milestone.contract_id}/").content.decode()


def test_a_viewer_sees_no_button_and_cannot_deliver(tenant_a, milestone):
    client = client_for(tenant_a, email=tenant_a.users["viewer"])
    assert "Mark delivered" not in client.get(f"/contracts/{milestone.contract_id}/").content.decode()
    assert client.post(f"/billing/milestones/{milestone.pk}/deliver/").status_code == 403
