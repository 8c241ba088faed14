"""The demo tenant's planted leaks: the first cycle's leakage step finds one of every rule."""

from __future__ import annotations

import pytest

from insights.models import LeakageFinding

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def test_the_demo_seed_plants_a_leak_of_every_rule_and_the_cycle_finds_them(enqueued):
    from billing.cycle import cycle_run
    from contracts.services.demo import contracts_demo_seed
    from discounts.services.demo import discounts_demo_seed
    from insights.services.demo import leakage_demo_seed
    from revexos.dates import tenant_today

    contracts_demo_seed()
    discounts_demo_seed()
    planted = leakage_demo_seed()
    assert set(planted) == {f"L{n}" for n in range(1, 11)}
    summary = cycle_run(as_of=tenant_today())
    assert summary["leakage"]["findings"] >= 10
    found = set(LeakageFinding.objects.filter(status="open").values_list("rule", flat=True))
    assert found >= set(planted), f"not found: {set(planted) - found}"
    assert leakage_demo_seed() == {}  # a second call plants nothing
