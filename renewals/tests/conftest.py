from __future__ import annotations

import pytest

from renewals.tests.helpers import user_make
from revexos.accounts.models import Role


@pytest.fixture
def am(in_tenant_a):
    return user_make(role=Role.ACCOUNT_MANAGER, full_name="Avery Manager")


@pytest.fixture
def other_am(in_tenant_a):
    return user_make(role=Role.ACCOUNT_MANAGER, full_name="Olive Other")
