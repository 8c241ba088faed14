"""Stored projections equal the pure forecast and valuation, over generated portfolios and after each
kind of change; every dashboard reads them in a number of queries that does not grow with contracts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from insights.forecast import MAX_MONTHS
from insights.tests.helpers import alert, contract, customer, discount, invoice
from revexos.accounts.models import Role

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 3, 10)
NOW = "2026-03-10 12:00:00+00:00"
ITEM_FIELDS = (
    "contract_id",
    "customer_id",
    "kind",
    "line_ref",
    "description",
    "billing_date",
    "currency",
    "gross",
    "discount",
    "net",
    "uplift",
    "period_start",
    "period_end",
    "basis",
    "renewal",
)
VALUE_FIELDS = (
    "contract_id",
    "currency",
    "committed",
    "recognized",
    "variable",
    "billed",
    "discounts",
    "value",
    "unearned",
    "deferred",
    "unbilled_receivable",
)


def assert_projections_equal_pure(today: date = TODAY) -> None:
    """Every stored row, and every dashboard total, equals what the pure modules compute now."""
    from insights.models import ForecastContractTotal, ValuationProjection
    from insights.selectors import (
        portfolio_forecast,
        portfolio_load,
        portfolio_valuation,
        projected_forecast,
        projected_forecast_items,
        projected_value_totals,
        projections_current,
        valuation_totals,
    )

    projections_current(today=today)
    portfolio = portfolio_load(today=today)
    for months in (1, 3, 6, 12, MAX_MONTHS):
        pure = portfolio_forecast(portfolio, months=months)
        stored = [
            tuple(row)
            for row in projected_forecast_items(today=today, months=months)
            .order_by("billing_date", "contract_id", "position")
            .values_list(*ITEM_FIELDS)
        ]
        assert stored == [tuple(getattr(item, f) for f in ITEM_FIELDS) for item in pure.items]
        if months in ForecastContractTotal.HORIZONS:  # the forecast page's ranking of contracts
            by_contract: dict = {}
            for item in pure.items:
                entry = by_contract.setdefault((item.contract_id, item.currency), [D(0), D(0), D(0), 0])
                entry[0] += item.gross
                entry[1] += item.discount
                entry[2] += item.net
                entry[3] += 1
            kept = ForecastContractTotal.objects.filter(as_of=today, horizon=months)
            assert {(t.contract_id, t.currency): [t.gross, t.discount, t.net, t.items] for t in kept} == by_contract
        figures = projected_forecast(today=today, months=months)
        assert figures.rows == pure.totals()
        assert figures.currencies == pure.currencies()
        assert figures.month_total(figures.months[0]) == pure.month_total(pure.months[0])
    valuation = portfolio_valuation(portfolio)
    stored_values = [
        tuple(row)
        for row in ValuationProjection.objects.filter(as_of=today)
        .order_by("contract_id", "currency")
        .values_list(*VALUE_FIELDS)
    ]
    assert stored_values == [tuple(getattr(v, f) for f in VALUE_FIELDS) for v in valuation]
    assert projected_value_totals(today=today) == valuation_totals(valuation)
    # Each account manager's book on their home: the pure valuation of their contracts.
    from contracts.models import Contract
    from insights.selectors import account_manager_home, portfolio_contracts
    from revexos.accounts.models import User

    owners = User.objects.filter(
        Q(pk__in=Contract.objects.values("owner_id")) | Q(pk__in=Contract.objects.values("customer__owner_id"))
    )
    for owner in owners:
        theirs = portfolio_valuation(portfolio_load(today=today, contracts=portfolio_contracts(owner=owner)))
        home = account_manager_home(today=today, user=owner)
        assert home["my_value"] == valuation_totals(theirs)
        by_id = {c.id: c for c in portfolio.contracts}
        assert home["my_customer_count"] == len({by_id[v.contract_id].customer_id for v in theirs})


@pytest.fixture
def generated(in_tenant_a):
    """The demo's mixed portfolio (retainers, milestones, fixed fees, T&M, usage, amendments, discounts,
    renewals) billed month by month up to today, plus customer-wide discounts shared by two contracts,
    ended and renewing contracts."""
    from billing.cycle import cycle_run
    from billing.tests.builders import hours
    from contracts.services.demo import contracts_demo_seed
    from discounts.services.demo import discounts_demo_seed

    with time_machine.travel("2025-11-01 08:00:00+00:00", tick=False):
        contracts_demo_seed(today=date(2025, 11, 1), seed=7, contracts=24)
        discounts_demo_seed(today=date(2025, 11, 1))
    for month in (date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)):
        with time_machine.travel(f"{month.isoformat()} 06:00:00+00:00", tick=False):
            cycle_run(as_of=month, only=["discounts", "billing"])
    shared = customer()
    a = contract(
        {"amount": D("1200.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        customer_obj=shared,
    )
    b = contract(
        {"amount": D("800.00"), "timing": "arrears", "line_ref": "RET"},
        {"time_and_materials": True, "line_ref": "TM"},
        start=date(2026, 2, 1),
        end=date(2026, 6, 30),
        customer_obj=shared,
        auto_renew=True,
        renewal_uplift_pct=D("4"),
    )
    discount(a, value="15", scope="customer", max_cycles=3)
    hours(b, "6.5", date(2026, 3, 2), line_ref="TM")
    ending = contract(
        {"amount": D("500.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2025, 4, 1),
        end=date(2026, 3, 31),
        auto_renew=True,
    )
    alert(ending, status="churning")
    renewing = contract(
        {"amount": D("900.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2025, 5, 1),
        end=date(2026, 4, 30),
    )
    alert(renewing, status="renewing", proposed_terms={"term_months": 6, "uplift_pct": "8"})
    invoice(
        a, lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "1200.00")], issue_date=date(2026, 1, 1)
    )
    return {"shared": (a, b), "ending": ending, "renewing": renewing}


@time_machine.travel(NOW, tick=False)
def test_projections_equal_the_pure_figures_of_a_generated_portfolio(generated):
    from contracts.models import Contract
    from insights.services.projections import projections_refresh

    assert Contract.objects.filter(status="active").count() > 20
    summary = projections_refresh(today=TODAY)
    assert summary["contracts"] == Contract.objects.filter(status="active").count()
    assert_projections_equal_pure()


@time_machine.travel(NOW, tick=False)
def test_projections_stay_equal_after_each_kind_of_change(generated):
    """Each change goes through the usual code path (service, model save, queryset update or bulk insert):
    the next read recomputes just the customers it touched and the figures equal the pure ones."""
    from billing.cycle import cycle_run
    from billing.models import Invoice
    from billing.services.invoicing import credit_note_create
    from billing.tests.builders import amend, hours
    from contracts.models import Contract, Milestone
    from discounts.models import Discount
    from insights.models import ContractProjection
    from insights.services.projections import projections_refresh, stale_customer_ids

    projections_refresh(today=TODAY)
    assert stale_customer_ids(today=TODAY) == []
    a, b = generated["shared"]

    # Amended: a new version with a higher retainer from April.
    amend(a, effective_from=date(2026, 4, 1), lines=[{"line_ref": "RET", "amount": D("1500.00")}])
    assert stale_customer_ids(today=TODAY) == [a.customer_id]
    assert_projections_equal_pure()

    # Invoices issued by the cycle (and the customer-wide discount's cycles used).
    cycle_run(as_of=TODAY, only=["billing"])
    assert_projections_equal_pure()

    # Credited and voided.
    issued = Invoice.objects.filter(status__in=("issued", "sent")).order_by("pk")
    credit_note_create(invoice_id=issued[0].pk, amount=issued[0].total / 2, reason="Goodwill")
    credit_note_create(invoice_id=issued[1].pk, amount=issued[1].total, reason="Billed by mistake")
    assert_projections_equal_pure()

    # Facts arrived: hours on a T&M line, a milestone delivered.
    hours(b, "12", date(2026, 3, 9), line_ref="TM")
    Milestone.objects.filter(pk=Milestone.objects.filter(status="pending").order_by("pk")[0].pk).update(
        status="delivered", delivered_at=timezone.now()
    )
    assert_projections_equal_pure()

    # Discounts changed: a new one, one ended early, one revoked (queryset updates, no save()).
    discount(b, value="5", start=date(2026, 3, 1), end=date(2026, 8, 31))
    live = Discount.objects.filter(status="active").order_by("pk")
    Discount.objects.filter(pk=live[0].pk).update(end_date=date(2026, 5, 31))
    Discount.objects.filter(pk=live[1].pk).update(status="revoked")
    assert_projections_equal_pure()

    # Contracts ended: one terminated, one's renewal decided against; their rows go.
    generated["ending"].status = "terminated"
    generated["ending"].save()
    Contract.objects.filter(pk=generated["renewing"].pk).update(auto_renew=False)
    from renewals.models import RenewalAlert

    RenewalAlert.objects.filter(contract=generated["renewing"]).update(status="churning")
    assert_projections_equal_pure()
    assert not ContractProjection.objects.filter(contract=generated["ending"]).exists()

    # A new day: every row is recomputed as of it.
    with time_machine.travel("2026-04-02 12:00:00+00:00", tick=False):
        assert_projections_equal_pure(today=date(2026, 4, 2))


@time_machine.travel(NOW, tick=False)
def test_a_read_recomputes_only_the_customers_that_changed(generated):
    from insights.models import ContractProjection
    from insights.services.projections import projections_catch_up, projections_refresh

    projections_refresh(today=TODAY)
    a, _ = generated["shared"]
    untouched = dict(
        ContractProjection.objects.exclude(customer_id=a.customer_id).values_list("contract_id", "refreshed_at")
    )
    discount(a, value="3", start=date(2026, 3, 1), end=date(2026, 12, 31))
    assert projections_catch_up(today=TODAY)["customers"] == 1
    assert (
        dict(ContractProjection.objects.exclude(customer_id=a.customer_id).values_list("contract_id", "refreshed_at"))
        == untouched
    )
    assert projections_catch_up(today=TODAY)["customers"] == 0


@time_machine.travel(NOW, tick=False)
def test_the_cycle_step_brings_every_projection_to_its_day(generated):
    from billing.cycle import cycle_run
    from insights.services.projections import stale_customer_ids

    assert stale_customer_ids(today=TODAY)
    summary = cycle_run(as_of=TODAY, only=["projections"])
    assert summary["projections"]["contracts"] > 20
    assert stale_customer_ids(today=TODAY) == []
    assert_projections_equal_pure()


def _bulk_portfolio(n: int, owner=None):
    from contracts.models import Customer
    from insights.tests.test_views import _bulk_portfolio as build

    contracts = build(n)
    if owner is not None:
        Customer.objects.filter(pk__in={c.customer_id for c in contracts}).update(owner=owner)
    return contracts


DASHBOARDS = [
    (Role.FINANCE, "/"),
    (Role.FINANCE, "/insights/forecast/?months=12"),
    (Role.FINANCE, "/insights/forecast/?months=12&group=customer"),
    (Role.FINANCE, "/insights/forecast/?months=12&group=lines"),
    (Role.FINANCE, "/insights/forecast/chart/?months=12"),
    (Role.FINANCE, "/insights/contract-value/"),
    (Role.FINANCE, "/insights/at-risk/"),
    (Role.FINANCE, "/insights/leakage/"),
    (Role.ACCOUNT_MANAGER, "/"),
    (Role.ACCOUNT_MANAGER, "/insights/contract-value/"),
]


@time_machine.travel("2026-02-10 12:00:00+00:00", tick=False)
def test_every_dashboard_runs_as_many_queries_for_1000_contracts_as_for_10(in_tenant_a):
    """10 contracts, then 1,000 (bulk-created, never projected): each dashboard runs as many queries
    for both, when nothing is stale (one query says so) and when it catches up first; the first read
    after the 990 new contracts catches them all up in the queries of a one-customer catch-up."""
    from insights.models import ProjectionDirty
    from insights.tests.test_views import client_for
    from revexos.accounts.models import User

    clients = {role: client_for(in_tenant_a, role) for role in (Role.FINANCE, Role.ACCOUNT_MANAGER)}
    manager = User.objects.get(email=in_tenant_a.users[Role.ACCOUNT_MANAGER])

    def counts(*, dirty: int | None = None, dashboards=DASHBOARDS) -> list[int]:
        result = []
        for role, url in dashboards:
            if dirty is not None:  # a change since the last read: one customer to catch up
                ProjectionDirty.objects.create(customer_id=dirty)
            with CaptureQueriesContext(connection) as captured:
                assert clients[role].get(url).status_code == 200, url
            result.append(len(captured.captured_queries))
        return result

    first = _bulk_portfolio(10, owner=manager)[0].customer_id
    counts()  # warm sessions and content types
    small = counts()
    small_dirty = counts(dirty=first)
    _bulk_portfolio(990, owner=manager)
    assert counts(dashboards=DASHBOARDS[:1]) == small_dirty[:1]  # 990 contracts caught up
    large = counts()
    large_dirty = counts(dirty=first)
    assert large == small, list(zip(DASHBOARDS, small, large, strict=True))
    assert large_dirty == small_dirty, list(zip(DASHBOARDS, small_dirty, large_dirty, strict=True))


def test_the_triggers_mark_the_customer_of_every_kind_of_row(in_tenant_a):
    from billing.tests.builders import hours
    from contracts.models import Milestone, PriceLine
    from insights.models import ProjectionDirty

    c = contract(
        {"amount": D("100.00"), "timing": "advance", "line_ref": "RET"},
        {"time_and_materials": True, "line_ref": "TM"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )

    def marked(change) -> bool:
        ProjectionDirty.objects.all().delete()
        change()
        return set(ProjectionDirty.objects.values_list("customer_id", flat=True)) == {c.customer_id}

    assert marked(lambda: PriceLine.objects.filter(version__contract=c).update(amount=D("120.00")))
    assert marked(lambda: hours(c, "2", date(2026, 1, 5), line_ref="TM"))
    assert marked(
        lambda: Milestone.objects.create(contract=c, line_ref="RET", name="x", expected_date=date(2026, 5, 1))
    )
    assert marked(lambda: discount(c, value="5", end=date(2026, 6, 30)))
    assert marked(
        lambda: invoice(
            c, lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "100.00")], issue_date=date(2026, 1, 1)
        )
    )
    assert marked(lambda: alert(c, status="open"))
    assert marked(lambda: type(c).objects.filter(pk=c.pk).update(title="Renamed"))
    ProjectionDirty.objects.all().delete()
    from billing.tests.builders import usage

    usage(c, "api_calls", 10, date(2026, 1, 5))  # usage counts once billing prices it, on invoice lines
    assert not ProjectionDirty.objects.exists()


def test_nothing_stale_means_nothing_recomputed_and_the_day_counts(in_tenant_a):
    from insights.services.projections import projections_catch_up, stale_customer_ids

    contract({"amount": D("100.00"), "timing": "advance", "line_ref": "RET"}, start=date(2026, 1, 1))
    today = date(2026, 2, 10)
    assert projections_catch_up(today=today)["contracts"] >= 1
    assert stale_customer_ids(today=today) == []
    assert stale_customer_ids(today=today + timedelta(days=1))


@time_machine.travel(NOW, tick=False)
def test_the_forecast_api_reads_the_projections_and_answers_the_pure_forecast(generated, in_tenant_a):
    """GET /api/v1/forecast answers from the stored rows what the pure forecast of the portfolio gives:
    monthly totals by kind, every line, and one customer's totals."""
    from django.test import Client

    from insights.selectors import portfolio_forecast, portfolio_load
    from revexos.money import quantize

    api = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")

    def money(currency, m) -> dict:
        return {k: str(quantize(getattr(m, k), currency)) for k in ("gross", "discount", "net")}

    portfolio = portfolio_load(today=TODAY)
    for months in (3, 12):
        pure = portfolio_forecast(portfolio, months=months)
        body = api.get(f"/api/v1/forecast?months={months}&items=true").json()
        assert [m["month"] for m in body["months"]] == [row.month.strftime("%Y-%m") for row in pure.totals()]
        for out, row in zip(body["months"], pure.totals(), strict=True):
            assert out["totals"] == [{"currency": c, **money(c, m)} for c, m in sorted(row.by_currency.items())]
            assert sorted((k["currency"], k["kind"], k["net"]) for k in out["by_kind"]) == sorted(
                (c, k, str(quantize(m.net, c))) for (c, k), m in row.by_currency_kind.items()
            )
        assert [(i["contract"], i["billing_date"], i["net"]) for i in body["items"]] == [
            (portfolio.by_id()[i.contract_id].number, i.billing_date.isoformat(), str(quantize(i.net, i.currency)))
            for i in pure.items
        ]
    some = portfolio.contracts[0]
    body = api.get(f"/api/v1/forecast?months=12&customer={some.customer_id}").json()
    pure = portfolio_forecast(portfolio, months=12)
    expected: dict[str, D] = {}
    for i in pure.items:
        if i.customer_id == some.customer_id:
            expected[i.currency] = expected.get(i.currency, D(0)) + i.net
    assert {t["currency"]: t["net"] for t in body["totals"]} == {c: str(quantize(v, c)) for c, v in expected.items()}
