"""Fixtures for the whole-site tests: a tenant seeded like the demo, and each role's crawl of it."""

from __future__ import annotations

import pytest
from django.db import connection

from revexos.accounts.models import Role


@pytest.fixture(scope="session")
def tenant_demo(django_db_setup, django_db_blocker):
    """A third committed tenant with the demo's data and its awkward cases (tests/site.py)."""
    from conftest import _provision
    from tests.site import SLUG, seed_demo_workspace

    with django_db_blocker.unblock():
        tenant = _provision(SLUG)
        tenant.seeded = seed_demo_workspace(tenant.schema)
        connection.set_schema_to_public()
    return tenant


@pytest.fixture(scope="session")
def demo_crawls(tenant_demo, django_db_blocker):
    """role → Crawl of every page that role can reach from its home page (Django test client)."""
    from tests.helpers import client_for
    from tests.site import crawl

    crawls = {}
    with django_db_blocker.unblock():
        for role in Role:
            client = client_for(tenant_demo, email=tenant_demo.users[role.value])
            crawls[role.value] = crawl(client, role.value)
            connection.set_schema_to_public()
    return crawls
