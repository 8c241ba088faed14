"""Set-based reads for the collection figures and pages (formulas in ``receivables/figures.py``).

Aging as of any date is one grouped query: each invoice's open amount on that date is computed in
SQL from the ledger rows dated on or before it (allocations and reversals, credit notes,
write-offs — each table summed once and hash-joined to the invoices), then summed per currency,
customer and bucket. Query counts never grow with the
number of invoices or payments; a DSO series runs one aging query per month asked for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    DecimalField,
    Q,
    QuerySet,
    Sum,
)

from billing.models import CreditNote, Invoice
from billing.services.history import external_open_at_dates
from receivables import figures
from receivables.models import Payment, Refund
from revexos.money import quantize

ZERO = Decimal("0")
MONEY = DecimalField(max_digits=20, decimal_places=6)
NOT_RECEIVABLE = ("draft",)


_OPEN_AS_OF_SQL = """
    SELECT i.id, i.currency, i.customer_id, i.due_date,
           GREATEST(GREATEST(i.amount_due - COALESCE(c.s, 0), 0) - COALESCE(a.s, 0) - COALESCE(w.s, 0), 0) AS open
      FROM billing_invoice i
      LEFT JOIN (SELECT invoice_id, SUM(amount) AS s FROM billing_creditnote
                  WHERE issue_date <= %(as_of)s GROUP BY invoice_id) c ON c.invoice_id = i.id
      LEFT JOIN (SELECT invoice_id, SUM(amount) AS s FROM receivables_allocation
                  WHERE applied_on <= %(as_of)s GROUP BY invoice_id) a ON a.invoice_id = i.id
      LEFT JOIN (SELECT invoice_id, SUM(amount) AS s FROM receivables_writeoff
                  WHERE written_on <= %(as_of)s GROUP BY invoice_id) w ON w.invoice_id = i.id
     WHERE i.status <> 'draft' AND i.issue_date <= %(as_of)s {where}
"""


def _open_rows_sql(*, as_of: date, customer_id: int | None = None, currency: str = "") -> tuple[str, dict]:
    """Each invoice's open amount on ``as_of`` as SQL: the ledger tables are summed once each and
    hash-joined (a fixed number of scans whatever the number of invoices), not per invoice."""
    where, params = "", {"as_of": as_of}
    if customer_id is not None:
        where += " AND i.customer_id = %(customer)s"
        params["customer"] = customer_id
    if currency:
        where += " AND i.currency = %(currency)s"
        params["currency"] = currency
    return _OPEN_AS_OF_SQL.format(where=where), params


def open_amounts_as_of(
    *, as_of: date, customer_id: int | None = None, currency: str = "", bucket: str = "", limit: int | None = None
) -> dict[int, Decimal]:
    """{invoice id: open amount on ``as_of``} for invoices with something open then (oldest due first)."""
    from django.db import connection

    sql, params = _open_rows_sql(as_of=as_of, customer_id=customer_id, currency=currency)
    outer = "SELECT id, open FROM (" + sql + ") o WHERE open > 0"
    if bucket in figures.BUCKETS:
        low, high = figures.bucket_bounds(as_of)[bucket]
        if low is not None:
            outer += " AND due_date >= %(low)s"
            params["low"] = low
        if high is not None:
            outer += " AND due_date <= %(high)s"
            params["high"] = high
    outer += " ORDER BY due_date, id"
    if limit:
        outer += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(outer, params)
        return dict(cursor.fetchall())


@dataclass
class AgingRow:
    currency: str
    total: Decimal = ZERO
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(figures.BUCKETS, ZERO))
    customer_id: int | None = None
    customer: str = ""
    customer_name: str = ""
    invoices: int = 0


@dataclass
class Aging:
    as_of: date
    currencies: list[AgingRow]
    customers: dict[str, list[AgingRow]]


def _aging_buckets_sql(*, as_of: date, params: dict) -> str:
    bounds = figures.bucket_bounds(as_of)
    columns = []
    for name in figures.BUCKETS:
        low, high = bounds[name]
        cond = " AND ".join(
            part
            for part in (
                f"o.due_date >= %(low_{name})s" if low is not None else "",
                f"o.due_date <= %(high_{name})s" if high is not None else "",
            )
            if part
        )
        params[f"low_{name}"], params[f"high_{name}"] = low, high
        columns.append(f"COALESCE(SUM(o.open) FILTER (WHERE {cond}), 0)")
    return ", ".join(columns)


def ar_aging(*, as_of: date, customer_id: int | None = None) -> Aging:
    """AR aging by currency and customer on ``as_of`` (DESIGN.md §5.1 ``/ar-aging``): one query."""
    from django.db import connection

    sql, params = _open_rows_sql(as_of=as_of, customer_id=customer_id)
    columns = _aging_buckets_sql(as_of=as_of, params=params)
    query = f"""
        SELECT o.currency, o.customer_id, cu.external_id, cu.legal_name, SUM(o.open), COUNT(*), {columns}
          FROM ({sql}) o JOIN contracts_customer cu ON cu.id = o.customer_id
         WHERE o.open > 0
         GROUP BY o.currency, o.customer_id, cu.external_id, cu.legal_name
         ORDER BY o.currency, SUM(o.open) DESC, cu.legal_name
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    by_currency: dict[str, AgingRow] = {}
    customers: dict[str, list[AgingRow]] = defaultdict(list)
    for c, cid, external_id, legal_name, total, count, *amounts in rows:
        row = AgingRow(
            currency=c,
            customer_id=cid,
            customer=external_id,
            customer_name=legal_name,
            total=quantize(total or ZERO, c),
            invoices=count,
            buckets={name: quantize(amount or ZERO, c) for name, amount in zip(figures.BUCKETS, amounts, strict=True)},
        )
        customers[c].append(row)
        agg = by_currency.setdefault(c, AgingRow(currency=c))
        agg.total += row.total
        agg.invoices += row.invoices
        for name in figures.BUCKETS:
            agg.buckets[name] += row.buckets[name]
    return Aging(as_of=as_of, currencies=[by_currency[c] for c in sorted(by_currency)], customers=dict(customers))


def ar_totals(*, as_of: date) -> list[AgingRow]:
    """``ar_aging(as_of=…).currencies`` without the rows per customer: one row per currency from the
    database (the finance home and DSO need only these; open amounts are money already rounded to
    the currency, so adding them before or after grouping by customer gives the same totals)."""
    from django.db import connection

    sql, params = _open_rows_sql(as_of=as_of)
    columns = _aging_buckets_sql(as_of=as_of, params=params)
    query = f"""
        SELECT o.currency, SUM(o.open), COUNT(*), {columns}
          FROM ({sql}) o
         WHERE o.open > 0
         GROUP BY o.currency
         ORDER BY o.currency
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    return [
        AgingRow(
            currency=c,
            total=quantize(total or ZERO, c),
            invoices=count,
            buckets={name: quantize(amount or ZERO, c) for name, amount in zip(figures.BUCKETS, amounts, strict=True)},
        )
        for c, total, count, *amounts in rows
    ]


# AR on several days at once (the DSO's month-ends and today). An invoice with no ledger row is open
# for its amount due from its issue day on: those are added up by (currency, issue day, due day)
# before meeting the days, so a month-end run's thousands of invoices are a handful of rows. An
# invoice settled to nothing by a day, with no ledger row after it, adds nothing on that day or
# later: only the other (invoice, day) pairs have their ledger rows summed, so the cost follows the
# invoices open around those days, not the whole history. Buckets by days past due on each day, as
# ``bucket_bounds`` draws them.
_AR_AT_DATES_SQL = """
WITH days AS (SELECT unnest(%(dates)s::date[]) AS as_of),
ledger AS (
    SELECT invoice_id, issue_date AS day, amount AS credited, 0 AS settled FROM billing_creditnote
     WHERE issue_date <= %(last)s
    UNION ALL
    SELECT invoice_id, applied_on, 0, amount FROM receivables_allocation WHERE applied_on <= %(last)s
    UNION ALL
    SELECT invoice_id, written_on, 0, amount FROM receivables_writeoff WHERE written_on <= %(last)s
),
by_invoice AS (
    SELECT invoice_id, MAX(day) AS last_day, SUM(credited) AS credited, SUM(settled) AS settled
      FROM ledger GROUP BY invoice_id
),
plain AS (
    SELECT i.currency, i.issue_date, i.due_date, SUM(i.amount_due) AS open, COUNT(*) AS n
      FROM billing_invoice i
     WHERE i.status <> 'draft' AND i.issue_date <= %(last)s AND i.amount_due > 0
       AND NOT EXISTS (SELECT 1 FROM by_invoice b WHERE b.invoice_id = i.id)
     GROUP BY i.currency, i.issue_date, i.due_date
),
invoices AS (
    SELECT i.id, i.currency, i.issue_date, i.due_date, i.amount_due,
           CASE WHEN GREATEST(GREATEST(i.amount_due - b.credited, 0) - b.settled, 0) = 0
                THEN GREATEST(b.last_day, i.issue_date) END AS settled_on
      FROM billing_invoice i JOIN by_invoice b ON b.invoice_id = i.id
     WHERE i.status <> 'draft' AND i.issue_date <= %(last)s
),
pairs AS (
    SELECT i.id, i.currency, i.due_date, i.amount_due, d.as_of
      FROM invoices i JOIN days d ON i.issue_date <= d.as_of
     WHERE i.settled_on IS NULL OR i.settled_on > d.as_of
),
sums AS (
    SELECT p.id, p.as_of, SUM(l.credited) AS credited, SUM(l.settled) AS settled
      FROM pairs p JOIN ledger l ON l.invoice_id = p.id AND l.day <= p.as_of
     GROUP BY p.id, p.as_of
),
opened AS (
    SELECT d.as_of, p.currency, d.as_of - p.due_date AS late, p.open, p.n
      FROM plain p JOIN days d ON p.issue_date <= d.as_of
    UNION ALL
    SELECT p.as_of, p.currency, p.as_of - p.due_date,
           GREATEST(GREATEST(p.amount_due - COALESCE(s.credited, 0), 0) - COALESCE(s.settled, 0), 0), 1
      FROM pairs p LEFT JOIN sums s ON s.id = p.id AND s.as_of = p.as_of
)
SELECT as_of, currency, SUM(open), SUM(n),
       COALESCE(SUM(open) FILTER (WHERE late <= 0), 0),
       COALESCE(SUM(open) FILTER (WHERE late BETWEEN 1 AND 30), 0),
       COALESCE(SUM(open) FILTER (WHERE late BETWEEN 31 AND 60), 0),
       COALESCE(SUM(open) FILTER (WHERE late BETWEEN 61 AND 90), 0),
       COALESCE(SUM(open) FILTER (WHERE late >= 91), 0)
  FROM opened
 WHERE open > 0
 GROUP BY as_of, currency
 ORDER BY as_of, currency
"""


def ar_totals_at(*, dates: list[date]) -> dict[date, list[AgingRow]]:
    """{day: ``ar_totals(as_of=day)``} for each of ``dates``, in one query."""
    from django.db import connection

    result: dict[date, list[AgingRow]] = {day: [] for day in dates}
    if not dates:
        return result
    with connection.cursor() as cursor:
        cursor.execute(_AR_AT_DATES_SQL, {"dates": sorted(set(dates)), "last": max(dates)})
        rows = cursor.fetchall()
    for as_of, c, total, count, *amounts in rows:
        result[as_of].append(
            AgingRow(
                currency=c,
                total=quantize(total or ZERO, c),
                invoices=int(count),
                buckets={name: quantize(a or ZERO, c) for name, a in zip(figures.BUCKETS, amounts, strict=True)},
            )
        )
    return result


def aging_invoices(
    *, as_of: date, currency: str = "", customer_id: int | None = None, bucket: str = "", limit: int = 200
) -> list[Invoice]:
    """The invoices behind an aging cell (the drill-down), oldest due first, each with ``open_as_of``."""
    amounts = open_amounts_as_of(as_of=as_of, customer_id=customer_id, currency=currency, bucket=bucket, limit=limit)
    invoices = Invoice.objects.filter(pk__in=list(amounts)).select_related("customer", "contract").in_bulk()
    result = []
    for pk, amount in amounts.items():
        invoice = invoices[pk]
        invoice.open_as_of = amount
        result.append(invoice)
    return result


# --------------------------------------------------------------------------- DSO and days to pay


def _period_of(periods: list[tuple[date, date]], day: date) -> int | None:
    for index, (start, end) in enumerate(periods):
        if start <= day <= end:
            return index
    return None


def _credit_sales_by_period(periods: list[tuple[date, date]]) -> list[dict[str, Decimal]]:
    """Credit sales of each period (invoices issued less credit notes, plus the imported history's):
    the three tables read in one query for all periods, grouped by day and currency."""
    from django.db import connection

    from billing.models_history import BILLED_EXTERNAL_STATUSES, ExternalInvoice

    sales: list[dict[str, Decimal]] = [defaultdict(lambda: ZERO) for _ in periods]
    first, last = periods[0][0], periods[-1][1]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT day, currency, SUM(amount) FROM (
                SELECT issue_date AS day, currency, total AS amount FROM {Invoice._meta.db_table}
                 WHERE issue_date BETWEEN %(first)s AND %(last)s AND status <> 'draft'
                UNION ALL
                SELECT issue_date, currency, -amount FROM {CreditNote._meta.db_table}
                 WHERE issue_date BETWEEN %(first)s AND %(last)s
                UNION ALL
                SELECT issue_date, currency, CASE WHEN kind = 'credit_note' THEN -total ELSE total END
                  FROM {ExternalInvoice._meta.db_table}
                 WHERE issue_date BETWEEN %(first)s AND %(last)s AND status = ANY(%(billed)s)
            ) sales
            GROUP BY day, currency
            """,
            {"first": first, "last": last, "billed": [str(x) for x in BILLED_EXTERNAL_STATUSES]},
        )
        for day, currency, amount in cursor.fetchall():
            index = _period_of(periods, day)
            if index is not None:
                sales[index][currency] += amount or ZERO
    return [dict(s) for s in sales]


def _paid_in_by_period(periods: list[tuple[date, date]]) -> list[dict[str, list[figures.Paid]]]:
    """Invoices paid in each period (with the imported history's), read in one query for all periods."""
    from django.db import connection

    from billing.models_history import ExternalInvoice

    result: list[dict[str, list[figures.Paid]]] = [defaultdict(list) for _ in periods]
    first, last = periods[0][0], periods[-1][1]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT currency, amount_paid, issue_date, due_date, paid_on FROM {Invoice._meta.db_table}
             WHERE status = 'paid' AND paid_on BETWEEN %(first)s AND %(last)s
            UNION ALL
            SELECT currency, total, issue_date, due_date, paid_on FROM {ExternalInvoice._meta.db_table}
             WHERE kind = 'invoice' AND paid_on BETWEEN %(first)s AND %(last)s
            """,
            {"first": first, "last": last},
        )
        rows = cursor.fetchall()
    for currency, amount, issue, due, paid in rows:
        index = _period_of(periods, paid)
        if index is not None:
            result[index][currency].append(figures.Paid(amount=amount, issue_date=issue, due_date=due, paid_on=paid))
    return result


@dataclass
class DsoMonth:
    month: str
    currency: str
    ar_end: Decimal
    credit_sales: Decimal
    days: int
    dso: Decimal | None
    average_days_to_pay: Decimal | None
    dso_trailing_3m: Decimal | None = None


def dso_month_ends(*, as_of: date, months: int) -> list[date]:
    """The days ``dso_series`` reads AR on: each month's end, the open month's being ``as_of``."""
    return [end for _start, end in figures.months_back(as_of=as_of, count=months)]


def dso_series(*, as_of: date, months: int, ar_at: dict[date, list[AgingRow]] | None = None) -> list[DsoMonth]:
    """DSO per calendar month and currency for the ``months`` months ending with ``as_of``'s month,
    plus the trailing three-month DSO at each month's end. The open month counts up to ``as_of``.
    Invoices imported from the previous system count as credit sales and receivables too
    (``billing.services.history.external_open_at`` says when one without a paid date is open)."""
    periods = figures.months_back(as_of=as_of, count=months + 2)
    ar: dict[int, dict[str, Decimal]] = {}
    sales: dict[int, dict[str, Decimal]] = {}
    monthly_sales = _credit_sales_by_period(periods)
    monthly_paid = _paid_in_by_period(periods[2:])
    ends = [end for _start, end in periods[2:]]
    if ar_at is None:  # (a caller that needs AR on these days too reads them once, with its own)
        ar_at = ar_totals_at(dates=ends)  # every month-end in one query, not one per month
    external_at = external_open_at_dates(dates=ends)  # the imported history's AR
    for index, (_start, end) in enumerate(periods):
        if index >= 2:
            ar[index] = {row.currency: row.total for row in ar_at[end]}
            for currency, amount in external_at[end].items():
                ar[index][currency] = ar[index].get(currency, ZERO) + amount
        sales[index] = monthly_sales[index]
    result = []
    for index in range(2, len(periods)):
        start, end = periods[index]
        paid = monthly_paid[index - 2]
        currencies = sorted(set(ar[index]) | set(sales[index]) | set(paid))
        days = (end - start).days + 1
        window_days = (end - periods[index - 2][0]).days + 1
        for c in currencies:
            ar_end = ar[index].get(c, ZERO)
            cs = sales[index].get(c, ZERO)
            cs3 = sum((sales[i].get(c, ZERO) for i in (index - 2, index - 1, index)), ZERO)
            result.append(
                DsoMonth(
                    month=f"{start:%Y-%m}",
                    currency=c,
                    ar_end=quantize(ar_end, c),
                    credit_sales=quantize(cs, c),
                    days=days,
                    dso=figures.dso(ar_end=ar_end, credit_sales=cs, days=days),
                    average_days_to_pay=figures.average_days_to_pay(paid.get(c, [])),
                    dso_trailing_3m=figures.dso(ar_end=ar_end, credit_sales=cs3, days=window_days),
                )
            )
    return result


def customer_payment_behaviour(*, since: date | None = None, customer_id: int | None = None) -> dict[int, dict]:
    """Per customer: average days to pay and average lateness over its paid invoices (one query)."""
    qs = Invoice.objects.filter(status="paid", paid_on__isnull=False, amount_paid__gt=0)
    if since:
        qs = qs.filter(paid_on__gte=since)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    grouped: dict[int, list[figures.Paid]] = defaultdict(list)
    for cid, amount, issue, due, paid in qs.values_list(
        "customer_id", "amount_paid", "issue_date", "due_date", "paid_on"
    ):
        grouped[cid].append(figures.Paid(amount=amount, issue_date=issue, due_date=due, paid_on=paid))
    return {
        cid: {
            "average_days_to_pay": figures.average_days_to_pay(rows),
            "average_lateness": figures.average_lateness(rows),
            "invoices_paid": len(rows),
        }
        for cid, rows in grouped.items()
    }


def cash_collected(*, as_of: date, months: int) -> list[dict]:
    """Cash received per month and currency, less refunds and chargebacks of that month (one query)."""
    from django.db import connection

    start = figures.months_back(as_of=as_of, count=months)[0][0]
    cash: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT month, currency, SUM(amount) FROM (
                SELECT date_trunc('month', received_on)::date AS month, currency, amount FROM {Payment._meta.db_table}
                 WHERE received_on BETWEEN %(start)s AND %(as_of)s
                UNION ALL
                SELECT date_trunc('month', r.refunded_on)::date, p.currency, -r.amount
                  FROM {Refund._meta.db_table} r JOIN {Payment._meta.db_table} p ON p.id = r.payment_id
                 WHERE r.refunded_on BETWEEN %(start)s AND %(as_of)s
            ) cash
            GROUP BY month, currency
            """,
            {"start": start, "as_of": as_of},
        )
        for month, currency, amount in cursor.fetchall():
            cash[(f"{month:%Y-%m}", currency)] += amount
    return [{"month": m, "currency": c, "amount": quantize(v, c)} for (m, c), v in sorted(cash.items())]


def expected_cash(*, today: date) -> list[dict]:
    """Open invoices expected in the next 30 / 60 / 90 days, shifted by each customer's lateness."""
    behaviour = customer_payment_behaviour(since=today - timedelta(days=365))
    sums: dict[str, dict[int, Decimal]] = defaultdict(lambda: dict.fromkeys(figures.HORIZONS, ZERO))
    for cid, currency, due, open_amount in (
        Invoice.objects.filter(
            status__in=["issued", "sent", "partially_paid"], amount_open__gt=0, disputed_at__isnull=True
        )
        .values_list("customer_id", "currency", "due_date", "amount_open")
        .order_by()
    ):
        lateness = behaviour.get(cid, {}).get("average_lateness")
        when = figures.expected_on(due_date=due, lateness_days=lateness, today=today)
        window = figures.horizon(expected=when, today=today)
        if window is None:
            continue
        for limit in figures.HORIZONS:
            if limit >= window:
                sums[currency][limit] += open_amount
    return [
        {"currency": c, **{f"next_{h}": quantize(v[h], c) for h in figures.HORIZONS}} for c, v in sorted(sums.items())
    ]


def unapplied_cash() -> QuerySet[Payment]:
    return Payment.objects.filter(unapplied__gt=0).select_related("customer").order_by("-received_on", "-pk")


def payment_list(*, customer: str = "", limit: int = 50, offset: int = 0) -> QuerySet[Payment]:
    qs = Payment.objects.select_related("customer").prefetch_related("allocations__invoice", "refunds")
    if customer:
        cond = Q(customer__external_id=customer)
        if customer.isdigit():
            cond |= Q(customer_id=int(customer))
        qs = qs.filter(cond)
    return qs.order_by("-received_on", "-pk")


def disputes_open() -> QuerySet:
    from receivables.models import Dispute

    return Dispute.objects.select_related("payment__customer", "invoice").order_by("-opened_on", "-pk")


def collections_home(*, today: date, months: int = 6) -> dict:
    """The Collections panel of the finance home: AR and overdue per currency, DSO by closed month
    (with the chart), cash collected this month, unapplied cash, open disputes. Fixed query count."""
    from receivables.charts import dso_chart

    # AR today and at each month-end of the DSO series: one query (today ends the open month).
    ar_at = ar_totals_at(dates=dso_month_ends(as_of=today, months=months + 1))
    aging_currencies = ar_at[today]
    # The chart shows closed months (a month a few days old would read as a tiny DSO); the
    # three-month DSO to date moves with every payment received today.
    series = dso_series(as_of=today, months=months + 1, ar_at=ar_at)
    month_names = [f"{start:%Y-%m}" for start, _ in figures.months_back(as_of=today, count=months + 1)]
    closed = [m for m in series if m.month != month_names[-1]]
    latest = {m.currency: m for m in series if m.month == month_names[-2]}
    current = {m.currency: m for m in series if m.month == month_names[-1]}
    cash = cash_collected(as_of=today, months=1)
    unapplied = (
        Payment.objects.filter(unapplied__gt=0).values("currency").annotate(s=Sum("unapplied")).order_by("currency")
    )
    return {
        "as_of": today,
        "ar": [
            {
                "currency": row.currency,
                "total": row.total,
                "overdue": row.total - row.buckets["current"],
                "over_60": row.buckets["61_90"] + row.buckets["over_90"],
            }
            for row in aging_currencies
        ],
        "dso_latest": sorted(latest.values(), key=lambda m: m.currency),
        "dso_month": month_names[-2],
        "dso_now": sorted(current.values(), key=lambda m: m.currency),
        "chart": dso_chart(closed, months=month_names[:-1]),
        "cash_month": cash,
        "unapplied": [{"currency": r["currency"], "total": quantize(r["s"], r["currency"])} for r in unapplied],
        "disputes": disputes_open()
        .filter(status__in=["needs_response", "warning_needs_response", "under_review"])
        .count(),
    }


def dunning_queue(*, today: date, limit: int = 50) -> list[dict]:
    """What goes out next and when: each open invoice's next reminder (by the tenant's steps)."""
    from receivables.models import DunningStep
    from receivables.services.dunning import dunning_candidates

    steps = list(DunningStep.objects.filter(active=True).order_by("offset_days"))
    if not steps:
        from receivables.services.dunning import DEFAULT_STEPS

        steps = [DunningStep(offset_days=o, name=n, is_final=f) for o, n, _s, _b, f in DEFAULT_STEPS]
    from receivables.services.dunning import step_due

    horizon = today + timedelta(days=60)
    rows = []
    for invoice in dunning_candidates(as_of=horizon, earliest_offset=min(s.offset_days for s in steps)):
        sent = invoice.last_offset if invoice.last_offset is not None else -10_000
        now = step_due(steps=steps, due_date=invoice.due_date, issue_date=invoice.issue_date, as_of=today)
        if now is not None and now.offset_days > sent:
            step, when = now, today  # due now: the next cycle run sends it
        else:
            floor = max(sent, now.offset_days if now else -10_000)
            upcoming = [
                s
                for s in steps
                if s.offset_days > floor
                and invoice.due_date + timedelta(days=s.offset_days) > today
                and invoice.due_date + timedelta(days=s.offset_days) >= invoice.issue_date
                and not (s.offset_days < 0 and today >= invoice.due_date)
            ]
            if not upcoming:
                continue
            step = upcoming[0]
            when = invoice.due_date + timedelta(days=step.offset_days)
        rows.append(
            {"invoice": invoice, "step": step, "on": when, "overdue_days": max((today - invoice.due_date).days, 0)}
        )
    rows.sort(key=lambda r: (r["on"], r["invoice"].due_date))
    return rows[:limit]
