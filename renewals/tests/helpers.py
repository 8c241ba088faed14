"""Building contracts for renewal tests (ORM via the contracts factories)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from contracts.tests.factories import ContractFactory, CustomerFactory, IssuingEntityFactory, PriceLineFactory
from revexos.accounts.models import Role, User


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def user_make(*, role: str = Role.ACCOUNT_MANAGER, email: str | None = None, full_name: str = "") -> User:
    return User.objects.create_user(
        email=email or f"{unique(role)}@example.com", password="x-unused-123", role=role, full_name=full_name
    )


def contract_make(
    *,
    owner=None,
    start=date(2026, 1, 1),
    end=date(2026, 12, 31),
    auto_renew=True,
    notice_days=30,
    term_months=12,
    uplift="5",
    window_days=None,
    monthly="1000.00",
    currency="USD",
    usage=False,
    customer_name=None,
    number=None,
    title="Platform services",
):
    """An active contract with a monthly retainer (and optionally a per-unit usage line)."""
    suffix = uuid.uuid4().hex[:6]
    customer = CustomerFactory(
        currency=currency,
        external_id=f"cust-{suffix}",
        legal_name=customer_name or f"Customer {suffix} Ltd",
    )
    entity = IssuingEntityFactory(currency=currency, invoice_prefix=f"R{suffix}-", legal_name=f"Entity {suffix} Ltd")
    contract = ContractFactory(
        customer=customer,
        issuing_entity=entity,
        number=number or f"R-{suffix}",
        title=title,
        start_date=start,
        end_date=end,
        auto_renew=auto_renew,
        notice_period_days=notice_days,
        renewal_term_months=term_months,
        renewal_uplift_pct=Decimal(uplift),
        renewal_window_days=window_days,
        owner=owner,
        version__currency=currency,
    )
    version = contract.versions.get()
    PriceLineFactory(version=version, line_ref="RET", position=1, amount=Decimal(monthly), description="Retainer")
    if usage:
        PriceLineFactory(
            version=version,
            usage=True,
            line_ref="API",
            position=2,
            unit_amount=Decimal("0.0015"),
            description="API calls",
        )
    return contract
