"""Stored projections: the forecast and the contract value of every active contract, as rows.

The dashboards add these rows up in SQL (GROUP BY month, currency, kind…) instead of walking every
contract's schedule on each page view. The rows are computed by the pure modules themselves
(``insights.forecast`` and ``insights.valuation`` through ``insights.selectors.portfolio_load``),
so a projected figure is the pure figure, stored. The rules that keep them equal:

* **as of a day** — every row carries the day it was computed for (the forecast's months, run rates
  and the straight-line recognition all move with today). A row of another day is stale.
* **by customer** — a customer-wide discount shares its cycles between the customer's contracts, so
  a customer's active contracts are always projected together, in one transaction.
* **dirty customers** — database triggers on every table the projections read (insights migration
  0003) log the customer of each changed row in ``ProjectionDirty``: a save, a bulk insert, a
  queryset update or raw SQL alike.
* **caught up before every read** — ``projections_catch_up`` recomputes the customers that are dirty,
  stale (as of another day), unprojected (a new or newly active contract) or projected but no longer
  active, before a dashboard aggregates: a fixed number of queries, cheap when little changed. The
  cycle's ``projections`` step (hourly) does the same for everything stale, in chunks, so the first
  page view of a day seldom pays for the whole portfolio.
* **one writer at a time** — a transaction-level advisory lock per tenant schema serializes the
  delete-and-insert of rows, so two refreshes never leave a customer's rows twice.

The forecast rows cover ``MAX_MONTHS`` months after the as-of day's; a dashboard of fewer months reads
the first ones (an item's amount and discount never depend on later items: discounts take cycles in
date order). One exception: the forecast extends an auto-renewing contract by the terms that start
within its horizon, so a period crossing the contract's end is priced whole in a long forecast and
clipped in a short one. Such a customer's forecast is computed once per range of horizons over which
its contracts' extensions stay the same, each row marked with its range (``horizon_from``–``horizon_to``).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from insights.forecast import MAX_MONTHS, ContractTerms, extended_terms, forecast, forecast_months
from insights.models import ForecastContractTotal
from insights.selectors import Portfolio, portfolio_load, portfolio_valuation
from revexos.pricing import add_months

CHUNK_CUSTOMERS = 1000

FORECAST_COLUMNS = (
    ("contract_id", "bigint"),
    ("customer_id", "bigint"),
    ("as_of", "date"),
    ("kind", "text"),
    ("line_ref", "text"),
    ("description", "text"),
    ("billing_date", "date"),
    ("month", "date"),
    ("currency", "text"),
    ("gross", "numeric"),
    ("discount", "numeric"),
    ("net", "numeric"),
    ("uplift", "numeric"),
    ("period_start", "date"),
    ("period_end", "date"),
    ("basis", "text"),
    ("renewal", "boolean"),
    ("position", "integer"),
    ("horizon_from", "smallint"),
    ("horizon_to", "smallint"),
)
VALUATION_COLUMNS = (
    ("contract_id", "bigint"),
    ("customer_id", "bigint"),
    ("as_of", "date"),
    ("currency", "text"),
    ("committed", "numeric"),
    ("recognized", "numeric"),
    ("variable", "numeric"),
    ("billed", "numeric"),
    ("discounts", "numeric"),
    ("value", "numeric"),
    ("unearned", "numeric"),
    ("deferred", "numeric"),
    ("unbilled_receivable", "numeric"),
    ("position", "integer"),
)
STATE_COLUMNS = (
    ("contract_id", "bigint"),
    ("customer_id", "bigint"),
    ("as_of", "date"),
    ("refreshed_at", "timestamptz"),
)

# Customers whose rows are not those of ``today``. Every change to a contract (a new one, a status
# change, a deletion) goes through the triggers, so the dirty log and the rows of another day are
# enough before a read (two index scans); the cycle also looks for active contracts without rows,
# or rows without an active contract, in case a trigger was ever bypassed (a restore, a TRUNCATE).
# ``as_of < day OR as_of > day`` rather than ``<>``: two ranges of the as_of index, so a portfolio
# that is up to date is found so without reading its rows.
STALE_CUSTOMERS_SQL = """
SELECT customer_id FROM insights_projectiondirty
UNION
SELECT customer_id FROM insights_contractprojection WHERE as_of < %s OR as_of > %s
"""
UNPROJECTED_CUSTOMERS_SQL = """
SELECT c.customer_id FROM contracts_contract c
LEFT JOIN insights_contractprojection p ON p.contract_id = c.id
WHERE c.status = 'active' AND (p.id IS NULL OR p.customer_id <> c.customer_id)
UNION
SELECT p.customer_id FROM insights_contractprojection p
LEFT JOIN contracts_contract c ON c.id = p.contract_id
WHERE c.id IS NULL OR c.status <> 'active'
"""
TOTAL_KEY = ("as_of", "month", "currency", "kind", "horizon_from", "horizon_to")
TOTAL_SUMS = ("gross", "discount", "net", "uplift")


def _lock(cursor, *, wait: bool = True) -> None:
    """One writer of a tenant's projections at a time (until the transaction ends). A catch-up with
    nothing to recompute writes nothing and must not queue behind the cycle's chunk: it only tries."""
    take = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    cursor.execute(f"SELECT {take}(hashtext(current_schema() || ':insights.projections'))")


def _totals_add(cursor, where: str, params: list, *, sign: int) -> None:
    """Add (sign 1) or take away (sign -1) the forecast rows matching ``where`` to/from the totals."""
    key = ", ".join(TOTAL_KEY)
    sums = ", ".join(f"{sign} * sum({f})" for f in TOTAL_SUMS)
    updates = ", ".join(f"{f} = t.{f} + excluded.{f}" for f in (*TOTAL_SUMS, "uplifted", "items"))
    cursor.execute(
        f"INSERT INTO insights_forecasttotal AS t ({key}, {', '.join(TOTAL_SUMS)}, uplifted, items)"
        f" SELECT {key}, {sums}, {sign} * count(*) FILTER (WHERE uplift <> 0), {sign} * count(*)"
        f" FROM insights_forecastprojection WHERE {where} GROUP BY {key}"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}",
        params,
    )


VALUE_SUMS = ("committed", "value", "recognized", "billed", "unearned", "unbilled_receivable", "deferred")


def _value_totals_add(cursor, where: str, params: list, *, sign: int) -> None:
    """Add (sign 1) or take away (sign -1) the valuation rows matching ``where`` to/from the totals."""
    sums = ", ".join(f"{sign} * sum({f})" for f in VALUE_SUMS)
    updates = ", ".join(f"{f} = t.{f} + excluded.{f}" for f in (*VALUE_SUMS, "contracts"))
    cursor.execute(
        f"INSERT INTO insights_valuationtotal AS t (as_of, currency, {', '.join(VALUE_SUMS)}, contracts)"
        f" SELECT as_of, currency, {sums}, {sign} * count(*) FROM insights_valuationprojection WHERE {where}"
        f" GROUP BY as_of, currency ON CONFLICT (as_of, currency) DO UPDATE SET {updates}",
        params,
    )


def _contract_totals_add(cursor, where: str, params: list, *, today: date) -> None:
    """Each contract's forecast over each of ForecastContractTotal.HORIZONS, from its rows."""
    first = forecast_months(today=today, months=1)[0]
    horizons = ", ".join(f"({int(n)})" for n in ForecastContractTotal.HORIZONS)
    cursor.execute(
        "INSERT INTO insights_forecastcontracttotal"
        " (contract_id, customer_id, as_of, horizon, currency, gross, discount, net, items)"
        " SELECT f.contract_id, f.customer_id, f.as_of, h.n, f.currency, sum(f.gross), sum(f.discount), sum(f.net),"
        " count(*)"
        f" FROM insights_forecastprojection f JOIN (VALUES {horizons}) h(n)"
        " ON f.horizon_from <= h.n AND f.horizon_to >= h.n AND f.month < %s::date + make_interval(months => h.n)"
        f" WHERE {where} GROUP BY f.contract_id, f.customer_id, f.as_of, h.n, f.currency",
        [first, *params],
    )


def _totals_rebuild(cursor) -> None:
    """The totals from the rows themselves (after a full refresh: no drift can outlive a day)."""
    cursor.execute("DELETE FROM insights_forecasttotal")
    _totals_add(cursor, "TRUE", [], sign=1)
    cursor.execute("DELETE FROM insights_valuationtotal")
    _value_totals_add(cursor, "TRUE", [], sign=1)


def _today() -> date:
    from revexos.dates import tenant_today

    return tenant_today()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    """A value in COPY's text format (None is \\N; text escaped; numbers, dates as Python prints them)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _insert(cursor, table: str, columns: tuple[tuple[str, str], ...], rows: list[tuple]) -> None:
    """All rows through one COPY, however many there are (no SQL text to build and parse), written
    as one text block: formatting the rows here is several times faster than row by row."""
    names = ", ".join(name for name, _ in columns)
    block = "".join("\t".join(map(_copy_value, row)) + "\n" for row in rows)
    with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        if block:
            copy.write(block)


def _refresh_customers(customer_ids: list[int], *, today: date) -> dict:
    """Recompute every projection row of these customers as of ``today``; a fixed number of queries
    whatever the number of customers (none included)."""
    from contracts.models import Contract

    ids = sorted(set(customer_ids))
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, wait=bool(ids))
        # Marks written after this point (by transactions still running) stay for the next refresh.
        # IN (SELECT unnest(…)) rather than = ANY(…): a hashed set, not a scan of the array per row.
        chosen = "(SELECT unnest(%s::bigint[]))"
        cursor.execute(f"DELETE FROM insights_projectiondirty WHERE customer_id IN {chosen}", [ids])
        # Their rows: of the contracts they have now, and of those projected under them before (a
        # contract moved to another customer). By contract id, so the indexes serve every delete.
        cursor.execute(
            f"SELECT array(SELECT id FROM contracts_contract WHERE customer_id IN {chosen}"
            f" UNION SELECT contract_id FROM insights_contractprojection WHERE customer_id IN {chosen})",
            [ids, ids],
        )
        theirs, params = "contract_id IN (SELECT unnest(%s::bigint[]))", [cursor.fetchone()[0]]
        _totals_add(cursor, theirs, params, sign=-1)
        _value_totals_add(cursor, theirs, params, sign=-1)
        for table in (
            "insights_forecastprojection",
            "insights_forecastcontracttotal",
            "insights_valuationprojection",
            "insights_contractprojection",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE {theirs}", params)
        contracts = Contract.objects.filter(
            status="active", customer_id__in=RawSQL("SELECT unnest(%s::bigint[])", (ids,))
        )
        portfolio = portfolio_load(today=today, contracts=contracts)
        customer_of = {c.id: c.customer_id for c in portfolio.contracts}
        forecast_rows = [
            (
                i.contract_id,
                i.customer_id,
                today,
                i.kind,
                i.line_ref,
                i.description,
                i.billing_date,
                i.month,
                i.currency,
                i.gross,
                i.discount,
                i.net,
                i.uplift,
                i.period_start,
                i.period_end,
                i.basis,
                i.renewal,
                position,
                horizon_from,
                horizon_to,
            )
            for (horizon_from, horizon_to), items in _forecast_by_horizon(portfolio, today=today)
            for position, i in enumerate(items)
        ]
        valuation_rows = [
            (
                v.contract_id,
                customer_of[v.contract_id],
                today,
                v.currency,
                v.committed,
                v.recognized,
                v.variable,
                v.billed,
                v.discounts,
                v.value,
                v.unearned,
                v.deferred,
                v.unbilled_receivable,
                position,
            )
            for position, v in enumerate(portfolio_valuation(portfolio))
        ]
        now = timezone.now()
        state_rows = [(c.id, c.customer_id, today, now) for c in portfolio.contracts]
        _insert(cursor, "insights_forecastprojection", FORECAST_COLUMNS, forecast_rows)
        _insert(cursor, "insights_valuationprojection", VALUATION_COLUMNS, valuation_rows)
        _insert(cursor, "insights_contractprojection", STATE_COLUMNS, state_rows)
        _totals_add(cursor, f"customer_id IN {chosen}", [ids], sign=1)
        _contract_totals_add(cursor, f"f.customer_id IN {chosen}", [ids], today=today)
        _value_totals_add(cursor, f"customer_id IN {chosen}", [ids], sign=1)
        cursor.execute("DELETE FROM insights_forecasttotal WHERE items = 0")
        cursor.execute("DELETE FROM insights_valuationtotal WHERE contracts = 0")
    return {
        "customers": len(ids),
        "contracts": len(state_rows),
        "forecast_rows": len(forecast_rows),
        "valuation_rows": len(valuation_rows),
    }


def _horizon_ends(today: date) -> list[date]:
    """The last day forecast by each horizon, 1 … MAX_MONTHS months."""
    first = forecast_months(today=today, months=1)[0]
    return [add_months(first, months) - timedelta(days=1) for months in range(1, MAX_MONTHS + 1)]


def _extensions(contract: ContractTerms, ends: list[date]) -> tuple[int, ...]:
    """How many versions the forecast gives the contract (renewal terms included) at each horizon."""
    return tuple(len(extended_terms(contract, until=end)[0]) for end in ends)


def _forecast_by_horizon(portfolio: Portfolio, *, today: date):
    """((horizon_from, horizon_to), items) — the whole range for most customers; a customer whose
    renewals depend on the horizon gets one forecast per range over which they do not change."""
    ends = _horizon_ends(today)
    by_customer: dict[int, list[ContractTerms]] = {}
    for contract in portfolio.contracts:
        by_customer.setdefault(contract.customer_id, []).append(contract)
    ranges: dict[tuple[int, int], list[ContractTerms]] = {}
    for contracts in by_customer.values():
        profile = list(zip(*(_extensions(c, ends) for c in contracts), strict=True))
        start = 0
        for months in range(1, MAX_MONTHS + 1):
            if months == MAX_MONTHS or profile[months] != profile[start]:
                ranges.setdefault((start + 1, months), []).extend(contracts)
                start = months
    for (horizon_from, horizon_to), contracts in sorted(ranges.items()):
        result = forecast(
            contracts=contracts,
            today=today,
            months=horizon_to,
            discounts_by_customer=portfolio.discounts_by_customer,
        )
        yield (horizon_from, horizon_to), result.items


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def stale_customer_ids(*, today: date, thorough: bool = False) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(STALE_CUSTOMERS_SQL, [today, today])
        found = {row[0] for row in cursor.fetchall()}
        if thorough:
            cursor.execute(UNPROJECTED_CUSTOMERS_SQL)
            found |= {row[0] for row in cursor.fetchall()}
    return sorted(found)


def projections_catch_up(*, today: date | None = None) -> dict:
    """Bring every projection row to ``today`` before a read: the stale customers (see the module
    docstring) are recomputed in one go, in the same queries however many they are. With none
    stale (most page views) it is the one query that says so."""
    today = today or _today()
    stale = stale_customer_ids(today=today)
    if not stale:
        return {"customers": 0, "contracts": 0, "forecast_rows": 0, "valuation_rows": 0}
    return _refresh_customers(stale, today=today)


def projections_refresh(
    contract_ids: list[int] | None = None, *, today: date | None = None, stale_only: bool = False
) -> dict:
    """Recompute projections as of ``today`` (the tenant's today by default), in chunks of
    ``CHUNK_CUSTOMERS`` customers, each its own transaction.

    ``contract_ids``: these contracts and the other contracts of their customers; None: every
    customer with an active or a projected contract, or marked dirty. ``stale_only``: only the customers whose rows
    are not up to date (the cycle's catch-up). Returns counts and the seconds taken.
    """
    from contracts.models import Contract
    from insights.models import ContractProjection

    began = time.perf_counter()
    today = today or _today()
    customers = set(stale_customer_ids(today=today, thorough=True)) if stale_only or contract_ids is None else set()
    if contract_ids is None and not stale_only:
        customers |= set(Contract.objects.filter(status="active").values_list("customer_id", flat=True).distinct())
        customers |= set(ContractProjection.objects.values_list("customer_id", flat=True).distinct())
    elif contract_ids is not None:
        wanted = set(
            Contract.objects.filter(pk__in=list(contract_ids)).values_list("customer_id", flat=True).distinct()
        )
        wanted |= set(
            ContractProjection.objects.filter(contract_id__in=list(contract_ids))
            .values_list("customer_id", flat=True)
            .distinct()
        )
        customers = customers & wanted if stale_only else wanted
    ordered = sorted(customers)
    summary = {"customers": 0, "contracts": 0, "forecast_rows": 0, "valuation_rows": 0}
    for start in range(0, len(ordered), CHUNK_CUSTOMERS):
        _add(summary, _refresh_customers(ordered[start : start + CHUNK_CUSTOMERS], today=today))
    if contract_ids is None and not stale_only:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            _totals_rebuild(cursor)
    summary["seconds"] = round(time.perf_counter() - began, 3)
    return summary
