"""Read queries for the renewal queue, the finance view by quarter, the home panel and the API.

Each runs a fixed number of queries, however many alerts there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncQuarter

from contracts.models import Contract, ContractStatus
from renewals.models import QUEUE_STATUSES, RenewalAlert, RenewalDecision, RenewalStatus
from revexos.accounts.models import Role, User
from revexos.parsing import parse_id

ZERO = Decimal(0)

# The queue's status filter: "needs action" is the default view.
STATUS_FILTERS: list[tuple[str, str]] = [
    ("action", "Needs action"),
    *[(s.value, s.label) for s in RenewalStatus],
    ("all", "All"),
]
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def quarter_bounds(value: str) -> tuple[date, date] | None:
    """ "2026-Q3" → (2026-07-01, 2026-09-30); anything else → None."""
    match = _QUARTER.match(value or "")
    if not match:
        return None
    year, q = int(match.group(1)), int(match.group(2))
    start = date(year, 3 * q - 2, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - timedelta(days=1)
    return start, end


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def can_see_all(user) -> bool:
    """Account managers work their own book; everyone else may look across owners."""
    return user.role != Role.ACCOUNT_MANAGER


def queue_owner_scope(*, user, owner: str) -> str:
    """The owner filter actually applied: "mine", "all", "none" or a user id (as a string)."""
    if not can_see_all(user):
        return "mine"
    if owner in ("mine", "all", "none"):
        return owner
    if (owner_id := parse_id(owner)) is not None:
        return str(owner_id)
    return "all"


def _owner_filter(alerts: QuerySet, *, user, scope: str) -> QuerySet:
    if scope == "mine":
        return alerts.filter(owner=user)
    if scope == "none":
        return alerts.filter(owner__isnull=True)
    if (owner_id := parse_id(scope)) is not None:
        return alerts.filter(owner_id=owner_id)
    return alerts


def _status_filter(alerts: QuerySet, status: str) -> QuerySet:
    if status == "all":
        return alerts
    if status in RenewalStatus.values:
        return alerts.filter(status=status)
    return alerts.filter(status__in=QUEUE_STATUSES)


def renewal_queue(*, user, status: str = "action", owner: str = "", quarter: str = "") -> QuerySet[RenewalAlert]:
    """The alerts a user works on, most urgent first: notice deadline, then value at stake."""
    alerts = RenewalAlert.objects.select_related(
        "contract", "contract__customer", "owner", "decided_by", "renewal_version"
    )
    alerts = _owner_filter(alerts, user=user, scope=queue_owner_scope(user=user, owner=owner))
    alerts = _status_filter(alerts, status)
    bounds = quarter_bounds(quarter)
    if bounds:
        alerts = alerts.filter(end_date__range=bounds)
    decisions = RenewalDecision.objects.select_related("decided_by").order_by("-decided_at", "-id")
    return alerts.prefetch_related(Prefetch("decisions", queryset=decisions)).order_by(
        "notice_deadline", "-value_at_stake", "pk"
    )


def renewal_alert_for_row(*, pk: int) -> RenewalAlert:
    """One alert with what its queue row shows."""
    decisions = RenewalDecision.objects.select_related("decided_by").order_by("-decided_at", "-id")
    return (
        RenewalAlert.objects.select_related("contract", "contract__customer", "owner", "decided_by", "renewal_version")
        .prefetch_related(Prefetch("decisions", queryset=decisions))
        .get(pk=pk)
    )


@dataclass
class Totals:
    count: int = 0
    escalated: int = 0
    by_currency: list[tuple[str, Decimal]] = field(default_factory=list)  # value at stake (RenewalAlert.value_at_stake)


def renewal_totals(alerts: QuerySet[RenewalAlert]) -> Totals:
    """Count, escalations and value at stake per currency (never summed across currencies): one query."""
    rows = (
        alerts.order_by()
        .values("currency")
        .annotate(
            n=Count("pk"),
            escalated=Count("pk", filter=Q(escalated_at__isnull=False)),
            value=Sum("value_at_stake"),
        )
        .order_by("currency")
    )
    totals = Totals()
    for row in rows:
        totals.count += row["n"]
        totals.escalated += row["escalated"]
        totals.by_currency.append((row["currency"], row["value"] or ZERO))
    return totals


def renewal_home_summary(*, user) -> Totals:
    """The home panel: the open alerts the user would see in their queue by default."""
    alerts = RenewalAlert.objects.filter(status__in=QUEUE_STATUSES)
    if not can_see_all(user):
        alerts = alerts.filter(owner=user)
    return renewal_totals(alerts)


def renewal_owner_choices() -> list[tuple[str, str]]:
    owners = (
        User.objects.filter(Q(renewal_alerts__isnull=False) | Q(role=Role.ACCOUNT_MANAGER), is_active=True)
        .distinct()
        .order_by("full_name", "email")
    )
    return [(str(u.pk), str(u)) for u in owners]


def renewal_quarter_choices() -> list[str]:
    quarters = (
        RenewalAlert.objects.annotate(q=TruncQuarter("end_date")).order_by("q").values_list("q", flat=True).distinct()
    )
    return [quarter_of(q) for q in quarters if q is not None]


@dataclass
class QuarterRow:
    quarter: str
    currency: str
    alerts: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    at_stake: Decimal = ZERO  # undecided or in negotiation: open, snoozed, renewing, churning
    renewed: Decimal = ZERO  # renewed or auto-renewed
    churned: Decimal = ZERO
    escalated: int = 0
    not_yet_raised: int = 0  # active contracts ending in the quarter whose window has not opened

    @property
    def statuses(self) -> list[tuple[str, str, int]]:
        order = list(RenewalStatus.values)
        return [
            (s, RenewalStatus(s).label, n) for s, n in sorted(self.by_status.items(), key=lambda i: order.index(i[0]))
        ]


_AT_STAKE = [RenewalStatus.OPEN, RenewalStatus.SNOOZED, RenewalStatus.RENEWING, RenewalStatus.CHURNING]
_RENEWED = [RenewalStatus.RENEWED, RenewalStatus.AUTO_RENEWED]


def renewals_by_quarter(*, user, owner: str = "all", start: date, quarters: int = 4) -> list[QuarterRow]:
    """Renewals by the quarter their term ends, per currency: what is at stake, kept and lost.

    Two queries: alerts grouped by quarter, currency and status; contracts ending in those quarters
    with no alert yet (their value is computed when their window opens).
    """
    first = quarter_bounds(quarter_of(start))[0]
    last = first
    for _ in range(quarters):
        last = date(last.year + (last.month + 3 > 12), (last.month + 2) % 12 + 1, 1)
    last = last - timedelta(days=1)
    alerts = _owner_filter(RenewalAlert.objects.all(), user=user, scope=queue_owner_scope(user=user, owner=owner))
    grouped = (
        alerts.filter(end_date__range=(first, last))
        .annotate(q=TruncQuarter("end_date"))
        .values("q", "currency", "status")
        .annotate(
            n=Count("pk"),
            value=Sum("value_at_stake"),
            escalated=Count("pk", filter=Q(escalated_at__isnull=False)),
        )
        .order_by()
    )
    rows: dict[tuple[str, str], QuarterRow] = {}
    for g in grouped:
        key = (quarter_of(g["q"]), g["currency"])
        row = rows.setdefault(key, QuarterRow(quarter=key[0], currency=key[1]))
        row.alerts += g["n"]
        row.escalated += g["escalated"]
        row.by_status[g["status"]] = row.by_status.get(g["status"], 0) + g["n"]
        value = g["value"] or ZERO
        if g["status"] in _AT_STAKE:
            row.at_stake += value
        elif g["status"] in _RENEWED:
            row.renewed += value
        else:
            row.churned += value
    contracts = Contract.objects.filter(status=ContractStatus.ACTIVE, end_date__range=(first, last)).filter(
        ~Exists(RenewalAlert.objects.filter(contract=OuterRef("pk"), end_date=OuterRef("end_date")))
    )
    if not can_see_all(user) or queue_owner_scope(user=user, owner=owner) == "mine":
        contracts = contracts.filter(Q(owner=user) | Q(owner__isnull=True, customer__owner=user))
    pending = (
        contracts.annotate(q=TruncQuarter("end_date"))
        .values("q", "customer__currency")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for p in pending:
        key = (quarter_of(p["q"]), p["customer__currency"])
        rows.setdefault(key, QuarterRow(quarter=key[0], currency=key[1])).not_yet_raised += p["n"]
    all_quarters = []
    cursor = first
    while cursor <= last:
        all_quarters.append(quarter_of(cursor))
        cursor = date(cursor.year + (cursor.month + 3 > 12), (cursor.month + 2) % 12 + 1, 1)
    ordered = sorted(rows.values(), key=lambda r: (r.quarter, r.currency))
    # Quarters with nothing ending still get a row, so the table reads as a calendar.
    present = {r.quarter for r in ordered}
    for quarter in all_quarters:
        if quarter not in present:
            ordered.append(QuarterRow(quarter=quarter, currency=""))
    return sorted(ordered, key=lambda r: (r.quarter, r.currency))


def renewal_alert_api_list(
    *, status: str = "", owner: str = "", due_before: date | None = None, notice_before: date | None = None
) -> QuerySet[RenewalAlert]:
    """The API's list: filters by status (a status, "action" or "all"), owner (e-mail or id), and
    term end / notice deadline on or before a date."""
    alerts = RenewalAlert.objects.select_related("contract", "contract__customer", "owner")
    alerts = _status_filter(alerts, status or "all")
    if owner:
        owner_id = parse_id(owner)
        alerts = alerts.filter(owner_id=owner_id) if owner_id else alerts.filter(owner__email__iexact=owner)
    if due_before is not None:
        alerts = alerts.filter(end_date__lte=due_before)
    if notice_before is not None:
        alerts = alerts.filter(notice_deadline__lte=notice_before)
    return alerts.order_by("notice_deadline", "-value_at_stake", "pk")


def renewal_alerts_of_contract(*, contract_id: int) -> list[RenewalAlert]:
    """A contract's alerts, latest term first, with their decisions (for the contract page)."""
    decisions = RenewalDecision.objects.select_related("decided_by").order_by("-decided_at", "-id")
    return list(
        RenewalAlert.objects.filter(contract_id=contract_id)
        .select_related("owner", "renewal_version")
        .prefetch_related(Prefetch("decisions", queryset=decisions))
        .order_by("-end_date")
    )
