"""Read queries for contracts. Views, the API and billing read contracts through here."""
from __future__ import annotations

from datetime import date

from django.db.models import Prefetch, QuerySet

from contracts.models import Contract, ContractVersion, PriceLine


def _version_queryset() -> QuerySet[ContractVersion]:
    lines = PriceLine.objects.prefetch_related("tiers", "rates").order_by("position", "id")
    return ContractVersion.objects.prefetch_related(Prefetch("price_lines", queryset=lines))


def contract_terms_on(*, contract: Contract, on: date) -> ContractVersion | None:
    """The version in force on ``on``: the latest ``effective_from`` on or before it.

    Before the first version takes effect (e.g. billing the contract's first period), the first
    version governs.
    """
    versions = _version_queryset().filter(contract=contract)
    version = versions.filter(effective_from__lte=on).order_by("-effective_from").first()
    return version or versions.order_by("effective_from").first()


def contract_versions(*, contract: Contract) -> list[ContractVersion]:
    return list(_version_queryset().filter(contract=contract).order_by("effective_from"))
